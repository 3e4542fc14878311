// Receipts (DESIGN.md §3 conv/<c>/read, §4 "Receipts are markers", §6 POST …/receipts):
// one path for MQTT and HTTP. A receipt is checked (schema, membership, seq not beyond
// the conversation's last), merged into the conversation's pending markers, and written
// with the others of its window in one statement; what that write changed goes out as
// one `receipts` summary:
// - on conv/<c>/receipts (QoS 0), for whoever watches the conversation;
// - to the inbox of every sender whose messages changed status (the whole summary);
// - to the inbox of every member whose read_seq grew (their own marker only), so that
//   all their devices agree on the unread count.
// Summaries carry the values stored after the write, so a device that applies markers
// with max (as it must: summaries of two nodes may cross) converges on what the store
// and GET /v1/conversations say.
import type { Logger } from 'pino'
import {
  ThreadlineError, type ReceiptMarker, type ReceiptRequest, type ReceiptResult, type ReceiptStatus
} from '../../schemas/index.js'
import { isUnavailable, type Store } from '../store.js'
import { serviceKey } from '../services.js'
import type { Telemetry } from '../telemetry.js'
import { inboxTopic, receiptsTopic } from '../topics.js'
import { checkConvId } from '../messages/parse-send.js'
import { ReceiptCoalescer, type CoalescerStats } from './coalescer.js'
import { Gate } from './gate.js'
import { LastSeqs } from './last-seq.js'
import { NO_MARKERS, mergeMarkers, receiptMarkers } from './markers.js'
import { receiptIn } from './payload.js'
import { lastSeqOf, memberMarkers, writeMarkers, type MarkersWritten } from './repo.js'

/** The receipts of a node: plugins/receipts provides it (MQTT and its REST route use it). */
export const RECEIPTS_SERVICE = serviceKey<ReceiptService>('receipts')

export type PublishSummary = (topic: string, payload: string, opts: { qos: 0 | 1 }) => Promise<void>

/** What the service needs to know about membership: the broker's cache fits. */
export interface MembershipView {
  /** the conversations of a user with a device on this node; undefined when not known here */
  convsOf(userId: string): ReadonlySet<string> | undefined
  isMember(convId: string, userId: string): Promise<boolean>
}

export interface ReceiptLimits {
  /** THREADLINE_RECEIPT_WINDOW_MS */
  readonly windowMs: number
  /** THREADLINE_MAX_PAYLOAD_BYTES */
  readonly maxPayloadBytes: number
  /** pending (conversation, member) entries per conversation; reaching it writes at once */
  readonly maxPendingPerConversation: number
  /** pending entries on the node */
  readonly maxPending: number
  /** receipts of one user waiting for the store to confirm their seq */
  readonly maxWaitingPerUser: number
  /** the longest pause between two tries of a write while the store is down */
  readonly retryMaxMs: number
  /** conversations whose last seq the node remembers */
  readonly lastSeqCacheSize: number
  /** the least time between two reads of one conversation's last seq */
  readonly lastSeqRefreshMs: number
  /** store connections receipts may hold at once (writes and checks together) */
  readonly storeConcurrency: number
}

export const DEFAULT_RECEIPT_LIMITS: Omit<ReceiptLimits, 'windowMs' | 'maxPayloadBytes'> = Object.freeze({
  maxPendingPerConversation: 4096,
  maxPending: 100_000,
  maxWaitingPerUser: 100,
  retryMaxMs: 10_000,
  lastSeqCacheSize: 10_000,
  lastSeqRefreshMs: 50,
  storeConcurrency: 2
})

export interface ReceiptStats extends CoalescerStats {
  /** summaries published: on conv/<c>/receipts and to senders' inboxes */
  summaries: number
  /** own-marker summaries to readers' inboxes */
  echoes: number
  /** store reads of a conversation's last seq */
  lastSeqReads: number
  /** receipts over MQTT answered with an error (HTTP answers its own) */
  refused: number
}

export { parseReceipt } from './payload.js'

const beyondEnd = (seq: number, last: number): ThreadlineError =>
  new ThreadlineError('not_found', `seq ${seq} does not exist: the conversation's last seq is ${last}`)
const notMember = (convId: string): ThreadlineError =>
  new ThreadlineError('not_member', `you are not a member of conversation ${convId}`)
const storeDown = (): ThreadlineError =>
  new ThreadlineError('unavailable', 'the receipt could not be checked: the store is unreachable; send it again later')

export class ReceiptService {
  readonly #store: Store
  readonly #publish: PublishSummary
  readonly #membership: MembershipView
  readonly #log: Logger
  readonly #limits: ReceiptLimits
  readonly #coalescer: ReceiptCoalescer<MarkersWritten>
  readonly #lastSeqs: LastSeqs
  readonly #gate: Gate
  /** user → receipts waiting for a last-seq or membership read */
  readonly #waiting = new Map<string, number>()
  readonly #counts = { summaries: 0, echoes: 0, refused: 0 }
  #dropWarnedAt = -Infinity
  /** the last conversation id checked, as it came and as the store spells it: a busy conversation's receipts repeat it */
  #lastConvId: readonly [raw: string, checked: string] | null = null

  /** `telemetry`: told of receipts the coalescer merged */
  constructor (store: Store, publish: PublishSummary, membership: MembershipView, log: Logger, limits: ReceiptLimits, telemetry?: Telemetry) {
    this.#store = store
    this.#publish = publish
    this.#membership = membership
    this.#log = log
    this.#limits = limits
    this.#gate = new Gate(limits.storeConcurrency)
    this.#lastSeqs = new LastSeqs((convId) => this.#gate.run(() => lastSeqOf(store, convId)), { max: limits.lastSeqCacheSize, minRefreshMs: limits.lastSeqRefreshMs })
    this.#coalescer = new ReceiptCoalescer<MarkersWritten>(
      { windowMs: limits.windowMs, maxPerConversation: limits.maxPendingPerConversation, maxTotal: limits.maxPending, retryMaxMs: limits.retryMaxMs, gate: this.#gate, telemetry },
      (convId, batch) => writeMarkers(store, convId, batch),
      {
        written: (convId, result) => this.#summarise(convId, result),
        failed: (convId, err, retrying) => {
          if (retrying) this.#log.warn({ conv_id: convId, err: (err as Error).message }, 'receipts not written: the store is unreachable; retrying')
          else this.#log.error({ conv_id: convId, err }, 'receipts not written; dropped')
        }
      })
  }

  get stats (): ReceiptStats {
    return { ...this.#coalescer.stats, ...this.#counts, lastSeqReads: this.#lastSeqs.reads }
  }

  /** Events committed on this node: their seqs are known to exist. */
  noteCommitted (convId: string, seq: number): void {
    this.#lastSeqs.note(convId, seq)
  }

  /**
   * A receipt published on conv/<c>/read (the payload as it came). Synchronous
   * (undefined) when what the node knows settles it, which is the common case; a
   * promise when the store must be asked. Throws or rejects with the ThreadlineError to
   * answer.
   */
  receive (userId: string, rawConvId: string, payload: Buffer | string): void | Promise<void> {
    try {
      const convId = this.#checkConvId(rawConvId)
      const receipt = receiptIn(payload, this.#limits.maxPayloadBytes)
      const convs = this.#membership.convsOf(userId)
      if (convs !== undefined && !convs.has(convId)) throw notMember(convId)
      const known = this.#lastSeqs.known(convId)
      if (convs !== undefined && known !== undefined && receipt.seq <= known) {
        this.#take(userId, convId, receipt.status, receipt.seq)
        return
      }
      return this.#receiveChecked(userId, convId, receipt, convs !== undefined)
    } catch (err) {
      this.#counts.refused++
      throw err
    }
  }

  #checkConvId (raw: string): string {
    const last = this.#lastConvId
    if (last !== null && raw === last[0]) return last[1]
    const checked = checkConvId(raw)
    this.#lastConvId = [raw, checked]
    return checked
  }

  async #receiveChecked (userId: string, convId: string, receipt: ReceiptRequest, memberKnown: boolean): Promise<void> {
    const waiting = this.#waiting.get(userId) ?? 0
    if (waiting >= this.#limits.maxWaitingPerUser) {
      this.#counts.refused++
      throw new ThreadlineError('rate_limited', `more than ${this.#limits.maxWaitingPerUser} of your receipts are waiting to be checked; send fewer`)
    }
    this.#waiting.set(userId, waiting + 1)
    try {
      if (!memberKnown && !await this.#gate.run(() => this.#membership.isMember(convId, userId))) throw notMember(convId)
      const last = await this.#lastSeqs.atLeast(convId, receipt.seq)
      if (last === undefined) throw notMember(convId) // the conversation is gone
      if (receipt.seq > last) throw beyondEnd(receipt.seq, last)
      this.#take(userId, convId, receipt.status, receipt.seq)
    } catch (err) {
      this.#counts.refused++
      if (err instanceof ThreadlineError) throw err
      if (isUnavailable(err)) throw storeDown()
      throw err
    } finally {
      const left = (this.#waiting.get(userId) ?? 1) - 1
      if (left <= 0) this.#waiting.delete(userId)
      else this.#waiting.set(userId, left)
    }
  }

  /**
   * POST /v1/conversations/:id/receipts: the same receipt; answers the caller's markers
   * as they are once it is applied (stored within the window).
   */
  async post (userId: string, rawConvId: string, receipt: ReceiptRequest): Promise<ReceiptResult> {
    const convId = checkConvId(rawConvId)
    const stored = await this.#gate.run(() => memberMarkers(this.#store, convId, userId)).catch((err: unknown) => {
      throw isUnavailable(err) ? storeDown() : err
    })
    if (stored === undefined) throw notMember(convId)
    this.#lastSeqs.note(convId, stored.lastSeq)
    if (receipt.seq > stored.lastSeq) throw beyondEnd(receipt.seq, stored.lastSeq)
    if (!this.#take(userId, convId, receipt.status, receipt.seq)) {
      throw new ThreadlineError('unavailable', 'too many receipts are waiting to be written; send it again later')
    }
    const now = mergeMarkers(mergeMarkers(stored, this.#coalescer.pendingFor(convId, userId) ?? NO_MARKERS), receiptMarkers(receipt.status, receipt.seq))
    return { conv_id: convId, user_id: userId, delivered_seq: now.delivered, read_seq: now.read }
  }

  #take (userId: string, convId: string, status: ReceiptStatus, seq: number): boolean {
    if (this.#coalescer.add(convId, userId, status, seq)) return true
    // dropped at a cap: the member's next receipt carries the same and more
    const now = performance.now()
    if (now - this.#dropWarnedAt > 10_000) {
      this.#dropWarnedAt = now
      this.#log.warn({ stats: this.#coalescer.stats }, 'receipts dropped: too many waiting to be written')
    }
    return false
  }

  #summarise (convId: string, result: MarkersWritten): void {
    if (result.changed.length === 0) return
    const summary = JSON.stringify({ t: 'receipts', conv_id: convId, markers: result.changed })
    const fail = (err: unknown): void => { this.#log.warn({ err, conv_id: convId }, 'receipts summary not published') }
    this.#publish(receiptsTopic(convId), summary, { qos: 0 }).catch(fail)
    this.#counts.summaries++
    const senders = new Set(result.senders)
    for (const sender of senders) {
      this.#publish(inboxTopic(sender), summary, { qos: 1 }).catch(fail)
      this.#counts.summaries++
    }
    for (const marker of result.changed) {
      if (!result.readGrew.has(marker.user_id) || senders.has(marker.user_id)) continue
      this.#publish(inboxTopic(marker.user_id), ownSummary(convId, marker), { qos: 1 }).catch(fail)
      this.#counts.echoes++
    }
  }

  /** Writes what waits (once) and takes no more receipts. */
  async stop (): Promise<void> {
    await this.#coalescer.stop()
  }
}

function ownSummary (convId: string, marker: ReceiptMarker): string {
  return JSON.stringify({ t: 'receipts', conv_id: convId, markers: [marker] })
}
