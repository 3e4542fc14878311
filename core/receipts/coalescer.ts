// Receipts arrive at several times the message rate; the store must not see each one
// (DESIGN.md §4: "Receipt writes are coalesced (≤ 500 ms)"). Per conversation, the
// receipts of a window are merged by max (one entry per member) and written in one
// statement when the window ends; what was stored is then handed on (the summaries).
//
// - One write per conversation at a time, and a few per node (the gate): receipts that
//   arrive while a write waits for its turn or runs go in it or the next one, so a window
//   of 0 still merges what arrives during a write, and a slow store is met with bigger
//   batches, not more connections.
// - Memory is bounded: one entry per (conversation, member), and at most `maxPerConversation`
//   entries per conversation and `maxTotal` in all; a receipt for a new pair past a cap is
//   dropped (counted). A conversation whose entries reach its cap is written at once.
// - Store down: the entries are kept (merged by max with newer receipts, so a retry
//   writes the newest values and nothing grows) and the write is tried again after a
//   backoff that doubles up to `retryMaxMs`. Markers are max-wins, so a late write is
//   never wrong. Any other failure (a bug, a value the store refuses) drops the batch:
//   trying the same statement again would fail the same way.
import { isUnavailable } from '../store.js'
import type { Telemetry } from '../telemetry.js'
import type { Gate } from './gate.js'
import type { ReceiptStatus } from '../../schemas/index.js'
import { mergeMarkers, raiseMarkers, type Markers, type PendingMarkers } from './markers.js'

export interface CoalescerOptions {
  /** how long the first receipt of a batch waits for others; 0: written as soon as the conversation's previous write is done */
  readonly windowMs: number
  readonly maxPerConversation: number
  readonly maxTotal: number
  /** the longest wait between retries while the store is down */
  readonly retryMaxMs: number
  /** takes turns with the other store work of receipts (see gate.ts) */
  readonly gate: Gate
  /** told how many receipts were merged into entries already waiting (`receiptsCoalesced`), once per write */
  readonly telemetry?: Telemetry
}

/** Writes one conversation's merged markers; resolves with what the caller hands on. */
export type WriteBatch<R> = (convId: string, batch: ReadonlyMap<string, Markers>) => Promise<R>

export interface CoalescerHooks<R> {
  /** after a successful write, with its result */
  written(convId: string, result: R, batchSize: number): void
  /** a write failed; `retrying` false: the batch was dropped */
  failed(convId: string, err: unknown, retrying: boolean): void
}

export interface CoalescerStats {
  /** receipts taken in (merged or new) */
  accepted: number
  /** receipts for a new (conversation, member) pair refused at a cap */
  dropped: number
  /** write statements that succeeded, and that failed */
  writes: number
  failedWrites: number
  /** entries waiting now, and writes in flight */
  pending: number
  writing: number
  /** the most entries that waited at once */
  pendingPeak: number
}

/** The smallest retry delay, so a window of 0 does not spin against a dead store. */
const RETRY_MIN_MS = 100

class Pending {
  /** raised in place by each receipt: nothing else holds these objects until the write takes the map */
  entries = new Map<string, PendingMarkers>()
  /** the entries taken by the write under way (until it settles) */
  batch: ReadonlyMap<string, Markers> | null = null
  /** when the oldest entry arrived (performance.now ms); its window ends windowMs later */
  since = 0
  timer: NodeJS.Timeout | null = null
  writing = false
  failures = 0
}

export class ReceiptCoalescer<R> {
  readonly #opts: CoalescerOptions
  readonly #gate: Gate
  readonly #write: WriteBatch<R>
  readonly #hooks: CoalescerHooks<R>
  readonly #convs = new Map<string, Pending>()
  readonly #inFlight = new Set<Promise<void>>()
  #total = 0
  /** receipts merged into a waiting entry since the last write began: told with the next one */
  #merged = 0
  #stopped = false
  readonly #stats = { accepted: 0, dropped: 0, writes: 0, failedWrites: 0, pendingPeak: 0 }

  constructor (opts: CoalescerOptions, write: WriteBatch<R>, hooks: CoalescerHooks<R>) {
    this.#opts = opts
    this.#gate = opts.gate
    this.#write = write
    this.#hooks = hooks
  }

  get stats (): CoalescerStats {
    return { ...this.#stats, pending: this.#total, writing: this.#inFlight.size }
  }

  /** The markers of `userId` in `convId` not known to be stored yet (waiting or being written), if any. */
  pendingFor (convId: string, userId: string): Markers | undefined {
    const conv = this.#convs.get(convId)
    const waiting = conv?.entries.get(userId)
    const writing = conv?.batch?.get(userId)
    if (waiting === undefined || writing === undefined) return waiting ?? writing
    return mergeMarkers(waiting, writing)
  }

  /** Takes a receipt in; false when it was dropped at a cap. */
  add (convId: string, userId: string, status: ReceiptStatus, seq: number): boolean {
    if (this.#stopped) return false
    let conv = this.#convs.get(convId)
    const current = conv?.entries.get(userId)
    if (current !== undefined) {
      raiseMarkers(current, status, seq)
      this.#stats.accepted++
      this.#merged++
      return true
    }
    if (this.#total >= this.#opts.maxTotal || (conv !== undefined && conv.entries.size >= this.#opts.maxPerConversation)) {
      this.#stats.dropped++
      return false
    }
    if (conv === undefined) {
      conv = new Pending()
      this.#convs.set(convId, conv)
    }
    if (conv.entries.size === 0) conv.since = performance.now()
    const entry = { delivered: 0, read: 0 }
    raiseMarkers(entry, status, seq)
    conv.entries.set(userId, entry)
    this.#total++
    this.#stats.accepted++
    if (this.#total > this.#stats.pendingPeak) this.#stats.pendingPeak = this.#total
    if (conv.entries.size >= this.#opts.maxPerConversation) this.#flushSoon(convId, conv, 0)
    else this.#schedule(convId, conv)
    return true
  }

  #schedule (convId: string, conv: Pending): void {
    if (conv.timer !== null || conv.writing || conv.entries.size === 0) return
    const due = conv.since + this.#opts.windowMs - performance.now()
    this.#flushSoon(convId, conv, Math.max(0, due))
  }

  #flushSoon (convId: string, conv: Pending, delayMs: number): void {
    if (conv.writing || this.#stopped) return
    if (conv.timer !== null) {
      if (delayMs > 0) return
      clearTimeout(conv.timer)
    }
    conv.timer = setTimeout(() => {
      conv.timer = null
      this.#flush(convId, conv)
    }, delayMs)
  }

  #flush (convId: string, conv: Pending): void {
    if (conv.writing || conv.entries.size === 0) return
    conv.writing = true
    let batch: ReadonlyMap<string, Markers> = new Map()
    // the batch is taken when the gate gives this write its turn: receipts that arrive
    // while it waits go in it too
    const done = this.#gate.run(() => {
      batch = conv.batch = conv.entries
      conv.entries = new Map()
      this.#total -= batch.size
      this.#tellMerged()
      return this.#write(convId, batch)
    }).then((result) => {
      this.#stats.writes++
      conv.failures = 0
      this.#tell(() => this.#hooks.written(convId, result, batch.size))
    }, (err: unknown) => {
      this.#stats.failedWrites++
      const retrying = isUnavailable(err) && !this.#stopped
      if (retrying) this.#putBack(conv, batch)
      conv.failures = retrying ? conv.failures + 1 : 0
      this.#tell(() => this.#hooks.failed(convId, err, retrying))
    }).finally(() => {
      conv.writing = false
      conv.batch = null
      this.#inFlight.delete(done)
      if (conv.entries.size === 0) {
        if (conv.timer === null && this.#convs.get(convId) === conv) this.#convs.delete(convId)
        return
      }
      if (conv.failures > 0) {
        const backoff = Math.min(this.#opts.retryMaxMs, Math.max(RETRY_MIN_MS, this.#opts.windowMs) * 2 ** (conv.failures - 1))
        this.#flushSoon(convId, conv, backoff)
      } else {
        this.#schedule(convId, conv)
      }
    })
    this.#inFlight.add(done)
  }

  #tellMerged (): void {
    const telemetry = this.#opts.telemetry
    if (this.#merged === 0 || telemetry === undefined) return
    if (telemetry.watched('receiptsCoalesced')) telemetry.emit('receiptsCoalesced', { count: this.#merged })
    this.#merged = 0
  }

  /** A failed batch goes back under the entries that came meanwhile, merged by max. */
  #putBack (conv: Pending, batch: ReadonlyMap<string, Markers>): void {
    if (conv.entries.size === 0) conv.since = performance.now()
    for (const [user, markers] of batch) {
      const newer = conv.entries.get(user)
      if (newer !== undefined) conv.entries.set(user, mergeMarkers(newer, markers))
      else {
        // a copy: entries are raised in place, the batch's objects stay as they were written
        conv.entries.set(user, { ...markers })
        this.#total++
      }
    }
  }

  #tell (fn: () => void): void {
    try {
      fn()
    } catch {
      // a listener's failure must not stop the coalescer; the listener logs its own
    }
  }

  /**
   * Shutdown: no more receipts; what waits is written now, once (a store that is down
   * loses it: markers are hints that the next receipt restores). Resolves when every
   * write has settled.
   */
  async stop (): Promise<void> {
    for (const [convId, conv] of this.#convs) {
      if (conv.timer !== null) clearTimeout(conv.timer)
      conv.timer = null
      if (!conv.writing) this.#flush(convId, conv)
    }
    this.#stopped = true
    // a write in flight may leave entries behind (they arrived during it): one more round
    while (this.#inFlight.size > 0) {
      await Promise.allSettled([...this.#inFlight])
      for (const [convId, conv] of this.#convs) if (!conv.writing && conv.entries.size > 0) this.#flush(convId, conv)
    }
  }
}
