// The rate rule of typing signals, per (user, conversation), on this node:
// - `true` is forwarded at most once per interval: a client that refreshes faster than
//   that (or several devices of one user) costs the subscribers nothing more;
// - `false` is forwarded when the last forwarded signal was `true` (a stop always gets
//   through), and dropped when it repeats a `false` already forwarded within the interval.
// So each pair forwards at most two signals per interval, however it toggles.
//
// Memory: a pair is remembered for one interval after its last forward, in a Map kept in
// forward order (re-inserted on each forward), so expired pairs are dropped from its
// front as new signals come in; beyond `maxPairs` the oldest pair is forgotten early (its
// next signal passes, which is harmless).
import { performance } from 'node:perf_hooks'

interface Pair {
  /** the last forwarded state */
  typing: boolean
  /** when it was forwarded (ms, monotonic) */
  at: number
  /** when a `true` was last forwarded; -Infinity for none */
  trueAt: number
}

export const DEFAULT_MAX_PAIRS = 100_000

export class TypingThrottle {
  readonly #pairs = new Map<string, Pair>()
  readonly #intervalMs: number
  readonly #maxPairs: number
  readonly #now: () => number

  /** `now`: a monotonic clock in ms (tests pass their own) */
  constructor (intervalMs: number, maxPairs = DEFAULT_MAX_PAIRS, now: () => number = () => performance.now()) {
    this.#intervalMs = intervalMs
    this.#maxPairs = maxPairs
    this.#now = now
  }

  /** pairs remembered now */
  get size (): number { return this.#pairs.size }

  /** Whether this signal is forwarded; a forwarded one is remembered. */
  pass (userId: string, convId: string, typing: boolean): boolean {
    if (this.#intervalMs === 0) return true
    const now = this.#now()
    this.#expire(now)
    const key = `${userId}\u0000${convId}`
    const last = this.#pairs.get(key)
    if (last !== undefined) {
      const forward = typing ? now - last.trueAt >= this.#intervalMs : last.typing
      if (!forward) return false
      this.#pairs.delete(key)
    }
    this.#pairs.set(key, { typing, at: now, trueAt: typing ? now : (last?.trueAt ?? -Infinity) })
    if (this.#pairs.size > this.#maxPairs) this.#pairs.delete(this.#pairs.keys().next().value as string)
    return true
  }

  #expire (now: number): void {
    for (const [key, pair] of this.#pairs) {
      if (now - pair.at < this.#intervalMs) return
      this.#pairs.delete(key)
    }
  }
}
