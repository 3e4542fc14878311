// Receipts over the limit, over MQTT: they are markers (max wins), so what matters is
// that the LAST one of a burst lands; dropping the ones in between loses nothing. A client
// can't tell a dropped QoS 0 receipt (and a PUBACKed QoS 1 one looks accepted), so
// instead of dropping, the highest receipt per (user, conversation, status) over the
// limit is kept and applied when the user's bucket has a token again: the newest marker
// of a burst always lands, late by at most the wait the bucket named plus one tick
// (FLUSH_TICK_MS), and a flood costs one kept receipt per conversation and status, not
// one per packet.
//
// One timer for all users, ticking while anything is kept: a timer per user, each armed
// for its own wait, woke the process thousands of times a second in a busy group (250
// members over the limit, issue 12's signals bench), and those wake-ups cost more CPU than
// the receipts themselves. A kept receipt still waits for the receipts' coalescing window
// (500 ms by default) before it is stored, so a tick more is not seen.
//
// Bounded: at most MAX_USERS users with kept receipts and MAX_PER_USER receipts each;
// past those a receipt over the limit is dropped (logged), which only a flood reaches.
import type { Logger } from '../../broker/logger.js'
import { receiptIn } from '../../core/receipts/payload.js'
import type { ReceiptRequest } from '../../schemas/index.js'
import type { Limit } from './buckets.js'
import type { Limiter } from './limiter.js'

export const MAX_USERS = 10_000
export const MAX_PER_USER = 64
/** how often kept receipts whose wait is over are applied (the default receipt limit gives a token every 50 ms) */
export const FLUSH_TICK_MS = 50

interface Kept { convId: string, seq: number, payload: Buffer | string }
interface UserKept {
  entries: Map<string, Kept>
  /** when the user's bucket has a token again (performance.now ms); null while none is awaited */
  dueAt: number | null
  /** a take from a bucket store that answers asynchronously (Redis) is under way */
  taking: boolean
}

/** Hands a receipt to the receipts service, as if it had just arrived. */
export type ApplyReceipt = (userId: string, convId: string, payload: Buffer | string) => void

// the caller checked the size against THREADLINE_MAX_PAYLOAD_BYTES already
const ANY_SIZE = Number.MAX_SAFE_INTEGER

/** The receipt in a payload, read as the receipts service reads it (core/receipts/payload.ts); null when it would be refused. */
function markerOf (payload: Buffer | string): ReceiptRequest | null {
  try {
    return receiptIn(payload, ANY_SIZE)
  } catch {
    return null
  }
}

export class DeferredReceipts {
  readonly #users = new Map<string, UserKept>()
  readonly #limit: Limit
  readonly #limiter: Limiter
  readonly #apply: ApplyReceipt
  readonly #log: Logger
  #timer: NodeJS.Timeout | null = null
  #stopped = false

  constructor (limit: Limit, limiter: Limiter, apply: ApplyReceipt, log: Logger) {
    this.#limit = limit
    this.#limiter = limiter
    this.#apply = apply
    this.#log = log
  }

  /** receipts kept now, over all users */
  get size (): number {
    let n = 0
    for (const u of this.#users.values()) n += u.entries.size
    return n
  }

  /** A receipt the limit refused; `waitMs`: when the bucket has a token again. */
  keep (userId: string, convId: string, payload: Buffer | string, waitMs: number): void {
    // a malformed one would only have been answered bad_request: nothing to keep
    const marker = markerOf(payload)
    if (marker === null || this.#stopped) return
    let user = this.#users.get(userId)
    if (user === undefined) {
      if (this.#users.size >= MAX_USERS) return this.#dropped(userId, 'too many users with receipts over the limit')
      user = { entries: new Map(), dueAt: null, taking: false }
      this.#users.set(userId, user)
    }
    const key = `${convId.toLowerCase()}\u0000${marker.status}`
    const kept = user.entries.get(key)
    if (kept !== undefined && kept.seq >= marker.seq) return
    if (kept === undefined && user.entries.size >= MAX_PER_USER) return this.#dropped(userId, 'too many receipts over the limit')
    user.entries.set(key, { convId, seq: marker.seq, payload })
    if (user.dueAt === null && !user.taking) user.dueAt = performance.now() + waitMs
    this.#schedule()
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#users.clear()
  }

  #schedule (): void {
    if (this.#timer !== null || this.#stopped) return
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#tick()
    }, FLUSH_TICK_MS)
    this.#timer.unref()
  }

  #tick (): void {
    const now = performance.now()
    for (const [userId, user] of this.#users) {
      if (user.dueAt === null || user.dueAt > now) continue
      user.dueAt = null
      this.#flush(userId, user)
    }
    if (this.#users.size > 0) this.#schedule()
  }

  /** Applies kept receipts while the user's bucket gives tokens; waits again when it refuses. */
  #flush (userId: string, user: UserKept): void {
    for (const [key, kept] of user.entries) {
      // the store, not the limiter: this receipt's refusal was reported when it came
      const wait = this.#limiter.store.take(this.#limit, userId)
      if (typeof wait !== 'number') {
        user.taking = true
        const then = (w: number): void => {
          user.taking = false
          if (this.#took(userId, user, key, kept, w)) this.#flush(userId, user)
        }
        // a store that fails answers like an empty bucket: the receipt is tried again a token later
        wait.then(then, () => then(this.#limit.intervalMs))
        return
      }
      if (!this.#took(userId, user, key, kept, wait)) return
    }
    if (user.entries.size === 0 && user.dueAt === null && !user.taking) this.#users.delete(userId)
  }

  /** One take's answer for one kept receipt; false when the flush stops here. */
  #took (userId: string, user: UserKept, key: string, kept: Kept, wait: number): boolean {
    if (this.#stopped) return false
    if (wait > 0) {
      user.dueAt = performance.now() + wait
      this.#schedule()
      return false
    }
    // a newer receipt kept while an asynchronous take ran stays for the next round
    if (user.entries.get(key) === kept) user.entries.delete(key)
    this.#apply(userId, kept.convId, kept.payload)
    return true
  }

  #dropped (userId: string, why: string): void {
    this.#log.info({ limit: this.#limit.name, user: userId }, `receipt over the limit dropped: ${why}`)
  }
}
