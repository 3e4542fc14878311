// Reads the membership change log (core/membership/change-log.ts) into a node's membership
// cache: every CATCH_UP_INTERVAL_MS, and whenever asked (after a Redis reconnect, say).
// The announcements on the cluster channel stay the fast path; this is what makes a
// change reach every node even when its announcement is lost, so a cached membership is
// never staler than one interval plus one read (see docs/operations.md, "Cluster").
import { performance } from 'node:perf_hooks'
import type { Logger } from './logger.js'
import { LogCursor } from './membership-cursor.js'
import { logStart, pruneChanges, readChanges, type LoggedChange } from '../core/membership/change-log.js'
import type { Queryable } from './store/index.js'

/** how often each node reads the log */
export const CATCH_UP_INTERVAL_MS = 1000
/** how long a missing log id is waited for (see membership-cursor.ts) */
export const GAP_WAIT_MS = 60_000
/** how long log rows are kept; a node that could not read the log for half of this reloads instead */
export const LOG_RETENTION_S = 3600
const PRUNE_INTERVAL_MS = 60_000
/** rows per query, and queries per catch-up: a backlog is worked off over several ticks */
const BATCH_ROWS = 500
const MAX_BATCHES = 20

export interface CatchUpTarget {
  /** Applies one logged change (idempotent: a row may be read more than once). */
  applyLogged(row: LoggedChange): void
  /** Reads every cached user's conversations from `members` again. */
  reload(): Promise<void>
  /** Forgets per-conversation bookkeeping older than `ms` (milliseconds, monotonic clock). */
  forgetBefore(ms: number): void
}

/** milliseconds on a monotonic clock; tests pass their own */
export type Clock = () => number

export class MembershipCatchUp {
  readonly #store: Queryable
  readonly #target: CatchUpTarget
  readonly #log: Logger
  readonly #now: Clock
  #cursor: LogCursor | null = null
  #lastReadAt = 0
  /** the first read prunes too */
  #lastPruneAt = -Infinity
  #tail: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | null = null
  #stopped = false
  #failing = false

  constructor (store: Queryable, target: CatchUpTarget, log: Logger, now: Clock = () => performance.now()) {
    this.#store = store
    this.#target = target
    this.#log = log
    this.#now = now
  }

  /** Reads the log every CATCH_UP_INTERVAL_MS until stop(). */
  start (): void {
    const tick = (): void => {
      this.#timer = null
      this.run().then(() => {
        if (this.#failing) this.#log.info('membership log readable again')
        this.#failing = false
      }, (err: unknown) => {
        if (this.#stopped) return // the store closes at shutdown
        if (!this.#failing) this.#log.warn({ err }, 'membership log not readable; retrying every interval')
        this.#failing = true
      }).finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, CATCH_UP_INTERVAL_MS).unref()
      })
    }
    tick()
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  /** Reads the log once more, after any read in progress; rejects when the store fails. */
  run (): Promise<void> {
    const next = this.#tail.catch(() => {}).then(() => this.#once())
    this.#tail = next
    return next
  }

  async #once (): Promise<void> {
    const startedAt = this.#now()
    if (this.#cursor === null || startedAt - this.#lastReadAt > LOG_RETENTION_S * 1000 / 2) {
      const lostTrack = this.#cursor !== null
      const start = await logStart(this.#store, GAP_WAIT_MS / 1000)
      // rows this node never read may have been pruned meanwhile: read the truth instead
      if (lostTrack) await this.#target.reload()
      this.#cursor = new LogCursor(start, GAP_WAIT_MS)
    }
    const cursor = this.#cursor
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const rows = await readChanges(this.#store, cursor.highest, cursor.gaps, BATCH_ROWS)
      const now = this.#now()
      for (const row of rows) if (cursor.take(row.id, now)) this.#target.applyLogged(row)
      if (rows.length < BATCH_ROWS) break
    }
    const givenUp = cursor.expire(this.#now())
    if (givenUp.length > 0) this.#log.info({ ids: givenUp.length, lowest: Math.min(...givenUp) }, 'membership log ids never committed (rolled back); not waited for any more')
    this.#lastReadAt = startedAt
    if (startedAt - this.#lastPruneAt > PRUNE_INTERVAL_MS) {
      this.#lastPruneAt = startedAt
      const pruned = await pruneChanges(this.#store, LOG_RETENTION_S)
      if (pruned > 0) this.#log.debug({ pruned }, 'old membership log rows pruned')
      this.#target.forgetBefore(startedAt - LOG_RETENTION_S * 1000)
    }
  }
}
