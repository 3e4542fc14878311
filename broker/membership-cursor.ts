// Where a node stands in the membership change log (core/membership/change-log.ts).
//
// Log ids come from one sequence but become visible in commit order, not id order: a
// transaction that took id 7 may commit after the one that took id 8, so "everything up
// to 8 is applied" would skip 7 for good. The cursor keeps the highest id read and the
// ids below it not read yet (gaps); every read asks for the ids above the highest and
// for the gaps again. A gap is either a transaction still in flight or an id that never
// commits (rolled back; PostgreSQL also skips up to 32 ids after a crash), and nothing
// tells the two apart from outside, so a gap is given up `gapWaitMs` after it was
// noticed. That is sound as long as no membership transaction holds its id longer: they
// are a few statements after the row lock is taken, far below the wait. (Should a node
// stall longer than that between taking an id and committing, its own announcement,
// sent after the commit, still carries the change; only losing both would miss it.)

/** Gaps tracked at most; a bigger jump than this (never seen in practice) gives up its lowest ids at once. */
export const MAX_TRACKED_GAPS = 10_000

export class LogCursor {
  #highest: number
  /** id → when it was noticed missing (ms, monotonic) */
  readonly #gaps = new Map<number, number>()
  readonly #gapWaitMs: number

  constructor (start: number, gapWaitMs: number) {
    this.#highest = start
    this.#gapWaitMs = gapWaitMs
  }

  /** the highest id read so far */
  get highest (): number { return this.#highest }

  /** ids below `highest` not read yet, still waited for */
  get gaps (): number[] { return [...this.#gaps.keys()] }

  /**
   * Marks an id read: true the first time (apply the row), false for a row read before
   * or one below where the cursor started.
   */
  take (id: number, now: number): boolean {
    if (id > this.#highest) {
      const from = Math.max(this.#highest + 1, id - MAX_TRACKED_GAPS)
      for (let missing = from; missing < id; missing++) this.#gaps.set(missing, now)
      this.#highest = id
      return true
    }
    return this.#gaps.delete(id)
  }

  /** Gives up the gaps noticed more than gapWaitMs ago; answers their ids (for the log). */
  expire (now: number): number[] {
    const given: number[] = []
    for (const [id, since] of this.#gaps) {
      if (now - since > this.#gapWaitMs) {
        this.#gaps.delete(id)
        given.push(id)
      }
    }
    return given
  }
}
