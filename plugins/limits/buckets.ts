// Token buckets, as GCRA (the generic cell rate algorithm): a bucket is one number, the
// "theoretical arrival time" (TAT) at which it would be full again. Taking a token moves
// the TAT one interval on; a take that would move it more than `burst` intervals past now
// is refused, and the excess is how long the caller must wait. This is exactly a bucket of
// `burst` tokens refilled at `1000 / intervalMs` per second, in one number and no timer.
//
// Why written here: no library does a token bucket (sustained rate + burst) shared by the
// nodes of a cluster that falls back to each node's memory when Redis fails.
// rate-limiter-flexible counts fixed windows (its BurstyRateLimiter is two windows, not a
// bucket), @fastify/rate-limit is per-route fixed windows too and would stall on a hung
// Redis. The Redis side is redis-buckets.ts: the same arithmetic in one Lua script.
import { performance } from 'node:perf_hooks'

/** One limit: its name (in keys, logs and telemetry) and its bucket's shape. */
export interface Limit {
  readonly name: string
  /** ms between two tokens: 1000 / the sustained rate per second */
  readonly intervalMs: number
  /** tokens a full bucket holds: what may be taken at once after a quiet spell */
  readonly burst: number
}

/**
 * Where buckets live. `take` answers 0 when a token was taken, or else the ms until one
 * will be there (always ≥ 1). The memory store answers synchronously: a send on a single
 * node pays no promise for its check.
 */
export interface BucketStore {
  take(limit: Limit, key: string): number | Promise<number>
  /** keys held now (memory: entries in the map; tests and diagnostics) */
  readonly size: number
  close(): void
}

export interface MemoryBucketOptions {
  /** hard cap on buckets held at once; past it the least recently used is forgotten */
  readonly maxKeys: number
  /** how often buckets that refilled (idle) are dropped */
  readonly sweepMs: number
  /** a monotonic clock in ms (tests pass their own) */
  readonly now?: () => number
}

export const DEFAULT_MEMORY_BUCKETS: MemoryBucketOptions = { maxKeys: 100_000, sweepMs: 10_000 }

/**
 * Buckets in this process's memory, bounded: a bucket that refilled holds nothing worth
 * keeping (a new one starts full too) and is swept; beyond `maxKeys` the least recently
 * used is dropped at once, so a flood of distinct keys (users, IPs) costs a bounded map.
 * A bucket forgotten early starts full again: lenient for that one key, never stricter.
 */
export class MemoryBuckets implements BucketStore {
  // key → TAT; kept in order of last use (a take re-inserts), so the front is the least
  // recently used: what the cap drops first
  readonly #tats = new Map<string, number>()
  readonly #maxKeys: number
  readonly #now: () => number
  readonly #sweeper: NodeJS.Timeout

  constructor (opts: MemoryBucketOptions = DEFAULT_MEMORY_BUCKETS) {
    this.#maxKeys = opts.maxKeys
    this.#now = opts.now ?? (() => performance.now())
    this.#sweeper = setInterval(() => this.sweep(), opts.sweepMs).unref()
  }

  get size (): number { return this.#tats.size }

  take (limit: Limit, key: string): number {
    const now = this.#now()
    const k = limit.name + '\u0000' + key
    const tat = this.#tats.get(k)
    // from the time still owed, not from now + … - now: with a fractional `now` that sum
    // can round up by 1e-11, and a full bucket of burst 1 then refused its one token
    const owed = (tat === undefined || tat < now ? 0 : tat - now) + limit.intervalMs
    const over = owed - limit.burst * limit.intervalMs
    if (over > 0) return Math.ceil(over)
    const next = now + owed
    if (tat !== undefined) this.#tats.delete(k)
    this.#tats.set(k, next)
    if (this.#tats.size > this.#maxKeys) this.#tats.delete(this.#tats.keys().next().value as string)
    return 0
  }

  /** Drops every bucket that is full again. */
  sweep (): void {
    const now = this.#now()
    for (const [k, tat] of this.#tats) if (tat <= now) this.#tats.delete(k)
  }

  close (): void {
    clearInterval(this.#sweeper)
    this.#tats.clear()
  }
}

/** A limit from its sustained rate (per second) and burst. */
export function limitOf (name: string, ratePerS: number, burst: number): Limit {
  return Object.freeze({ name, intervalMs: 1000 / ratePerS, burst })
}
