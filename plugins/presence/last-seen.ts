// users.last_seen (DESIGN.md §5), the one thing presence stores: written when a user goes
// offline, never while they are online, in batches of whatever went offline within a
// second (a node dying takes many users offline at once). A later time always wins, so
// two nodes writing the same user in either order leave the newer one. When the store is
// down the times wait here (bounded) and go with the next batch.
import type { Logger } from '../../broker/logger.js'
import type { Queryable } from '../../core/store.js'

const BATCH = 1000

export class LastSeenWriter {
  readonly #pending = new Map<string, number>()
  readonly #store: Queryable
  readonly #log: Logger
  readonly #windowMs: number
  readonly #max: number
  #timer: NodeJS.Timeout | null = null
  #flushing: Promise<void> | null = null
  #failing = false
  /** times dropped because too many waited (the store was down that long) */
  dropped = 0

  constructor (store: Queryable, log: Logger, windowMs = 1000, max = 100_000) {
    this.#store = store
    this.#log = log
    this.#windowMs = windowMs
    this.#max = max
  }

  add (userId: string, atMs: number): void {
    const before = this.#pending.get(userId)
    if (before !== undefined && before >= atMs) return
    this.#pending.delete(userId) // re-inserted last: the oldest waiting go first when full
    this.#pending.set(userId, atMs)
    if (this.#pending.size > this.#max) {
      this.#pending.delete(this.#pending.keys().next().value as string)
      this.dropped++
    }
    this.#arm()
  }

  /** A time not written yet (for answers that read the store meanwhile). */
  waiting (userId: string): number | undefined {
    return this.#pending.get(userId)
  }

  /** Writes what waits; resolves when the write is done or failed. */
  flush (): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#flushing ??= this.#write().finally(() => {
      this.#flushing = null
      if (this.#pending.size > 0) this.#arm()
    })
    return this.#flushing
  }

  async stop (): Promise<void> {
    await this.#flushing
    await this.flush()
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #arm (): void {
    if (this.#timer !== null || this.#flushing !== null) return
    this.#timer = setTimeout(() => { void this.flush() }, this.#windowMs)
    this.#timer.unref()
  }

  async #write (): Promise<void> {
    while (this.#pending.size > 0) {
      const batch = [...this.#pending].slice(0, BATCH).sort((a, b) => (a[0] < b[0] ? -1 : 1))
      for (const [id] of batch) this.#pending.delete(id)
      try {
        await this.#store.query(
          `UPDATE users u SET last_seen = x.t FROM unnest($1::text[], $2::timestamptz[]) AS x(id, t)
           WHERE u.id = x.id AND (u.last_seen IS NULL OR u.last_seen < x.t)`,
          [batch.map(b => b[0]), batch.map(b => new Date(b[1]).toISOString())])
        if (this.#failing) this.#log.info('presence: last_seen written again')
        this.#failing = false
      } catch (err) {
        for (const [id, at] of batch) if ((this.#pending.get(id) ?? -1) < at) this.#pending.set(id, at)
        if (!this.#failing) this.#log.warn({ err: (err as Error).message, waiting: this.#pending.size }, 'presence: last_seen not written; retrying')
        this.#failing = true
        return
      }
    }
  }
}
