// The outbox: every send from send() until the server has answered it for good. An entry
// stays `pending`, and is sent again with the same client_msg_id on every new connection
// and whenever an answer is overdue, until its event (with its seq) or a refusal comes
// back; the server stores it once however often it arrives. Then `sent`, and for text
// messages `delivered` and `read` as other members' receipt markers pass its seq.
import type { ReceiptsSummary, OutboxEntry, OutboxStatus, OutboxStorage, EventEnvelope, ErrorEnvelope, ErrorCode } from './types.js'
import type { SendAck, SendPayload } from './transport.js'
import { ThreadlineApiError } from './http.js'

export interface Dispatcher {
  /** long-poll sends wait for each answer, so a conversation's sends keep their order */
  serial: boolean
  send (convId: string, payload: SendPayload): Promise<SendAck | null>
}

export interface OutboxOptions {
  storage: OutboxStorage
  resendAfterMs: number
  changed (entry: OutboxEntry): void
  /** saving to the app's storage failed */
  failedToSave (err: unknown): void
}

const RANK: Record<OutboxStatus, number> = { pending: 0, failed: 0, sent: 1, delivered: 2, read: 3 }
/** Settled entries kept for outbox() (sent, delivered, failed), oldest dropped first. */
const KEEP_SETTLED = 500

const key = (convId: string, clientMsgId: string): string => `${convId}\n${clientMsgId}`

export class Outbox {
  readonly #opts: OutboxOptions
  readonly #entries = new Map<string, OutboxEntry>()
  /** when each pending entry last went out */
  readonly #sentAt = new Map<string, number>()
  /** the highest markers of other members, per conversation */
  readonly #peers = new Map<string, { delivered: number, read: number }>()
  /** entries that left the outbox lately, for find() */
  readonly #gone = new Map<string, OutboxEntry>()
  #saving: Promise<void> = Promise.resolve()
  #chain: Promise<void> = Promise.resolve()

  constructor (opts: OutboxOptions) {
    this.#opts = opts
  }

  async load (): Promise<void> {
    for (const e of await this.#opts.storage.load()) {
      if (e.status === 'pending' && !this.#entries.has(key(e.conv_id, e.client_msg_id))) this.#entries.set(key(e.conv_id, e.client_msg_id), { ...e })
    }
  }

  /** An entry by its temp id, also one settled for good lately (read, or sent when not text). */
  find (tempId: string): OutboxEntry | undefined {
    for (const e of this.#entries.values()) if (e.temp_id === tempId) return { ...e }
    const gone = this.#gone.get(tempId)
    return gone === undefined ? undefined : { ...gone }
  }

  list (): OutboxEntry[] {
    return [...this.#entries.values()].map(e => ({ ...e }))
  }

  pending (): OutboxEntry[] {
    return [...this.#entries.values()].filter(e => e.status === 'pending')
  }

  add (entry: OutboxEntry): void {
    this.#entries.set(key(entry.conv_id, entry.client_msg_id), entry)
    this.#save()
    this.#opts.changed({ ...entry })
  }

  /** Sends every pending entry (on a new connection), in the order they were made. */
  flush (dispatcher: Dispatcher): void {
    for (const entry of this.pending()) this.dispatch(dispatcher, entry)
  }

  /** Sends the pending entries whose answer is overdue; returns when the next one will be. */
  resendOverdue (dispatcher: Dispatcher, now: number): number | null {
    let next: number | null = null
    for (const entry of this.pending()) {
      const due = (this.#sentAt.get(entry.temp_id) ?? 0) + this.#opts.resendAfterMs
      if (due <= now) this.dispatch(dispatcher, entry)
      const again = (this.#sentAt.get(entry.temp_id) ?? now) + this.#opts.resendAfterMs
      next = next === null ? again : Math.min(next, again)
    }
    return next
  }

  dispatch (dispatcher: Dispatcher, entry: OutboxEntry): void {
    this.#sentAt.set(entry.temp_id, Date.now())
    const run = async (): Promise<void> => {
      if (entry.status !== 'pending') return
      try {
        const ack = await dispatcher.send(entry.conv_id, payloadOf(entry))
        if (ack !== null) this.#settle(entry, { status: 'sent', seq: ack.seq, ts: ack.ts })
      } catch (err) {
        // refused for good over HTTP; anything else (a connection lost before the PUBACK,
        // a 503, a 429) stays pending and goes again
        if (err instanceof ThreadlineApiError && !err.retryable && err.status !== 401) {
          this.#settle(entry, { status: 'failed', error: { code: err.code as ErrorCode, message: err.message } })
        } else if (err instanceof ThreadlineApiError && err.status === 429) {
          this.#holdFor(entry, err.retryAfterMs)
        }
      }
    }
    if (dispatcher.serial) this.#chain = this.#chain.then(run)
    else void run()
  }

  /** An event from the inbox: settles the entry it answers. */
  onEvent (e: EventEnvelope, me: string): void {
    if (e.sender_id !== me) return
    const entry = this.#entries.get(key(e.conv_id, e.client_msg_id))
    if (entry?.status === 'pending') this.#settle(entry, { status: 'sent', seq: e.seq, ts: e.ts })
  }

  /** An error envelope: true when it answered one of our sends. */
  onError (e: ErrorEnvelope): boolean {
    if (e.conv_id === undefined || e.client_msg_id === undefined) return false
    const entry = this.#entries.get(key(e.conv_id, e.client_msg_id))
    if (entry === undefined) return false
    if (entry.status !== 'pending') return true
    // unavailable: the store was down, the session resends it (we do too); rate_limited:
    // nothing was stored, it goes again once the wait the server named has passed
    if (e.code === 'rate_limited') this.#holdFor(entry, e.retry_after_ms)
    else if (e.code !== 'unavailable') this.#settle(entry, { status: 'failed', error: { code: e.code, message: e.message } })
    return true
  }

  /** Makes a pending entry's next resend due `ms` from now (by resendOverdue), not sooner. */
  #holdFor (entry: OutboxEntry, ms = this.#opts.resendAfterMs): void {
    this.#sentAt.set(entry.temp_id, Date.now() + ms - this.#opts.resendAfterMs)
  }

  onReceipts (summary: ReceiptsSummary, me: string): void {
    const peer = this.#peers.get(summary.conv_id) ?? { delivered: 0, read: 0 }
    for (const m of summary.markers) {
      if (m.user_id === me) continue
      peer.delivered = Math.max(peer.delivered, m.delivered_seq, m.read_seq)
      peer.read = Math.max(peer.read, m.read_seq)
    }
    this.#peers.set(summary.conv_id, peer)
    for (const entry of [...this.#entries.values()]) {
      if (entry.conv_id === summary.conv_id) this.#advance(entry)
    }
  }

  #advance (entry: OutboxEntry): void {
    if (entry.type !== 'text' || entry.seq === undefined || RANK[entry.status] === 0) return
    const peer = this.#peers.get(entry.conv_id)
    if (peer === undefined) return
    const status: OutboxStatus = peer.read >= entry.seq ? 'read' : peer.delivered >= entry.seq ? 'delivered' : entry.status
    if (RANK[status] > RANK[entry.status]) this.#update(entry, { status })
  }

  #settle (entry: OutboxEntry, change: Partial<OutboxEntry>): void {
    this.#sentAt.delete(entry.temp_id)
    this.#update(entry, change)
    this.#save()
    this.#advance(entry)
  }

  #update (entry: OutboxEntry, change: Partial<OutboxEntry>): void {
    Object.assign(entry, change)
    const k = key(entry.conv_id, entry.client_msg_id)
    // read is final, and only text messages get ticks after sent
    if (entry.status === 'read' || (entry.status === 'sent' && entry.type !== 'text')) this.#leave(k, entry)
    this.#trim()
    this.#opts.changed({ ...entry })
  }

  #trim (): void {
    const settled = [...this.#entries.entries()].filter(([, e]) => e.status !== 'pending')
    for (const [k, e] of settled.slice(0, Math.max(0, settled.length - KEEP_SETTLED))) this.#leave(k, e)
  }

  #leave (k: string, entry: OutboxEntry): void {
    this.#entries.delete(k)
    this.#gone.set(entry.temp_id, entry)
    for (const old of this.#gone.keys()) {
      if (this.#gone.size <= KEEP_SETTLED) break
      this.#gone.delete(old)
    }
  }

  /** Saves the pending entries; saves run one after another, so the last one wins. */
  #save (): void {
    const snapshot = this.pending().map(e => ({ ...e }))
    this.#saving = this.#saving.then(() => this.#opts.storage.save(snapshot)).catch((err: unknown) => this.#opts.failedToSave(err))
  }

  /** Resolves once every save so far has reached the storage. */
  saved (): Promise<void> {
    return this.#saving
  }
}

function payloadOf (e: OutboxEntry): SendPayload {
  switch (e.type) {
    case 'text': return { client_msg_id: e.client_msg_id, type: 'text', text: e.text!, ...(e.reply_to !== undefined ? { reply_to: e.reply_to } : {}) }
    case 'edit': return { client_msg_id: e.client_msg_id, type: 'edit', target_seq: e.target_seq!, text: e.text! }
    case 'reaction': return { client_msg_id: e.client_msg_id, type: 'reaction', target_seq: e.target_seq!, emoji: e.emoji ?? null }
    case 'delete': return { client_msg_id: e.client_msg_id, type: 'delete', target_seq: e.target_seq! }
  }
}
