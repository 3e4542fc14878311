// A refusal that anyone can repeat (a flood of sockets, a misconfigured proxy on every
// connection) must not be one log line each, or it fills the disk: the first one is
// logged, then at most one line per interval with how many there were since.

/** at most one line per this long while the same refusal repeats */
export const REFUSAL_LOG_EVERY_MS = 10_000

export class LogThrottle {
  #count = 0
  #loggedAt = -Infinity

  constructor (private readonly everyMs = REFUSAL_LOG_EVERY_MS) {}

  /** Counts one event: how many since the last line (this one included) when a line is due, else null. */
  hit (): number | null {
    this.#count++
    const now = Date.now()
    if (now - this.#loggedAt < this.everyMs) return null
    const count = this.#count
    this.#loggedAt = now
    this.#count = 0
    return count
  }
}
