// One check of one limit, and what every refusal leaves behind: a `limited` telemetry
// event (every one is counted) and an info line naming who (user id or address) and which
// limit, never a token or a message's text. The line is throttled per (limit, who) by
// broker/log-throttle.ts, with how many refusals it stands for: a client hammering past
// its limit must not be able to fill the log.
import { LogThrottle } from '../../broker/log-throttle.js'
import type { Logger } from '../../broker/logger.js'
import type { Telemetry } from '../../core/telemetry.js'
import { ThreadlineError } from '../../schemas/index.js'
import type { BucketStore, Limit } from './buckets.js'

/** What a bucket is keyed by, as logged. */
export type Subject = 'user' | 'ip'

/** `rate_limited`, carrying how long to wait: `retry_after_ms` in the HTTP body and the MQTT error event. */
export class RateLimited extends ThreadlineError {
  constructor (message: string, readonly retryAfterMs: number) {
    super('rate_limited', message)
  }

  override toBody (): { code: 'rate_limited', message: string, retry_after_ms: number } {
    return { code: 'rate_limited', message: this.message, retry_after_ms: this.retryAfterMs }
  }
}

/** (limit, who) pairs whose lines are throttled; past it the memory is simply cleared (a flood of distinct addresses) */
const LOGGED_MAX = 10_000

export class Limiter {
  readonly #store: BucketStore
  readonly #telemetry: Telemetry | undefined
  readonly #log: Logger
  /** (limit, who) → the throttle of its `rate limited` line */
  readonly #logged = new Map<string, LogThrottle>()

  constructor (store: BucketStore, telemetry: Telemetry | undefined, log: Logger) {
    this.#store = store
    this.#telemetry = telemetry
    this.#log = log
  }

  get store (): BucketStore { return this.#store }

  /**
   * Takes a token of `key`'s bucket: 0 when there was one, else the ms to wait (the
   * refusal is reported). Synchronous unless the buckets live in Redis. `who` is the
   * user id or address the key stands for (`key` may add a route to it).
   */
  check (limit: Limit, key: string, by: Subject, who: string): number | Promise<number> {
    const wait = this.#store.take(limit, key)
    if (wait === 0) return 0
    if (typeof wait === 'number') return this.#refused(limit, by, who, wait)
    return wait.then(w => w === 0 ? 0 : this.#refused(limit, by, who, w))
  }

  #refused (limit: Limit, by: Subject, who: string, wait: number): number {
    this.#telemetry?.emit('limited', { limit: limit.name })
    const pair = `${limit.name}\u0000${who}`
    let throttle = this.#logged.get(pair)
    if (throttle === undefined) {
      if (this.#logged.size >= LOGGED_MAX) this.#logged.clear()
      throttle = new LogThrottle()
      this.#logged.set(pair, throttle)
    }
    const refusals = throttle.hit()
    if (refusals !== null) this.#log.info({ limit: limit.name, [by]: who, retry_after_ms: wait, refusals }, 'rate limited')
    return wait
  }
}

/** Runs `then` with a check's answer, synchronously when it was synchronous. */
export function whenChecked<T> (wait: number | Promise<number>, then: (wait: number) => T): T | Promise<T> {
  return typeof wait === 'number' ? then(wait) : wait.then(then)
}
