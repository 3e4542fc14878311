// Receipts over the limit, over MQTT: they are markers (max wins), so what matters is
// that the LAST one of a burst lands; dropping the ones in between loses nothing. A client
// can't tell a dropped QoS 0 receipt (and a PUBACKed QoS 1 one looks accepted), so
// instead of dropping, the highest receipt per (user, conversation, status) over the
// limit is kept and applied when the user's bucket has a token again: the newest marker
// of a burst always lands, late by at most the wait the bucket named, and a flood costs
// one kept receipt per conversation and status, not one per packet.
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

interface Kept { convId: string, seq: number, payload: Buffer | string }
interface UserKept { entries: Map<string, Kept>, timer: NodeJS.Timeout | null }

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
      user = { entries: new Map(), timer: null }
      this.#users.set(userId, user)
    }
    const key = `${convId.toLowerCase()}\u0000${marker.status}`
    const kept = user.entries.get(key)
    if (kept !== undefined && kept.seq >= marker.seq) return
    if (kept === undefined && user.entries.size >= MAX_PER_USER) return this.#dropped(userId, 'too many receipts over the limit')
    user.entries.set(key, { convId, seq: marker.seq, payload })
    this.#arm(userId, user, waitMs)
  }

  stop (): void {
    this.#stopped = true
    for (const user of this.#users.values()) if (user.timer !== null) clearTimeout(user.timer)
    this.#users.clear()
  }

  #arm (userId: string, user: UserKept, waitMs: number): void {
    if (user.timer !== null) return
    user.timer = setTimeout(() => {
      user.timer = null
      void this.#flush(userId, user)
    }, waitMs)
    user.timer.unref()
  }

  /** Applies kept receipts while the user's bucket gives tokens; waits again when it refuses. */
  async #flush (userId: string, user: UserKept): Promise<void> {
    for (const [key, kept] of user.entries) {
      // the store, not the limiter: this receipt's refusal was reported when it came
      const wait = await this.#limiter.store.take(this.#limit, userId)
      if (this.#stopped) return
      if (wait > 0) {
        this.#arm(userId, user, wait)
        return
      }
      user.entries.delete(key)
      this.#apply(userId, kept.convId, kept.payload)
    }
    if (user.entries.size === 0 && user.timer === null) this.#users.delete(userId)
  }

  #dropped (userId: string, why: string): void {
    this.#log.info({ limit: this.#limit.name, user: userId }, `receipt over the limit dropped: ${why}`)
  }
}
