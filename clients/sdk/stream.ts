// One conversation's events in seq order, each once. Events arrive from the inbox (live or
// from the offline queue), from long-poll, and from history, in any order and more than
// once; a stream releases them one seq after another. A missing seq holds back the later
// events until history has filled it; a seq history doesn't have either (seqs may skip a
// number) is passed over once history has answered for it.
import type { EventEnvelope } from './types.js'

export interface HistoryPage { events: EventEnvelope[], has_more: boolean }

export interface StreamDeps {
  /** GET …/events?after_seq=afterSeq&limit=limit */
  fetchAfter (convId: string, afterSeq: number, limit: number): Promise<HistoryPage>
  release (envelope: EventEnvelope): void
  /** a fill failed (network, server): the client retries it later */
  fillFailed (convId: string, err: unknown): void
}

/** History page size for fills: the server's largest. */
const PAGE = 200
/** A gap wider than this is filled with its newest events only: the rest is history the app can page back to. */
export const MAX_FILL = 1000

export class ConversationStream {
  /** the highest seq released (0: none yet) */
  cursor: number
  readonly #convId: string
  readonly #deps: StreamDeps
  readonly #pending = new Map<number, EventEnvelope>()
  #filling: Promise<void> | null = null
  /** a seq known to exist (a conversation's last_seq) that a fill must reach */
  #target = 0

  constructor (convId: string, cursor: number, deps: StreamDeps) {
    this.#convId = convId
    this.cursor = cursor
    this.#deps = deps
  }

  get filling (): boolean {
    return this.#filling !== null
  }

  get waiting (): number {
    return this.#pending.size
  }

  offer (envelope: EventEnvelope): void {
    this.#accept(envelope)
    this.#drain()
    if (this.#pending.size > 0) void this.fill()
  }

  /** Fills from history up to `upTo` (a last_seq the server reported) and any gap below a waiting event. */
  fill (upTo = 0): Promise<void> {
    this.#target = Math.max(this.#target, upTo)
    this.#filling ??= this.#fillLoop().catch((err: unknown) => {
      this.#deps.fillFailed(this.#convId, err)
    }).finally(() => { this.#filling = null })
    return this.#filling
  }

  #accept (envelope: EventEnvelope): void {
    if (envelope.seq > this.cursor && !this.#pending.has(envelope.seq)) this.#pending.set(envelope.seq, envelope)
  }

  #drain (): void {
    for (let next = this.#pending.get(this.cursor + 1); next !== undefined; next = this.#pending.get(this.cursor + 1)) {
      this.#pending.delete(next.seq)
      this.cursor = next.seq
      this.#deps.release(next)
    }
  }

  /** Releases every waiting event up to `seq` in order, passing over the seqs that have none. */
  #releaseThrough (seq: number): void {
    const due = [...this.#pending.keys()].filter(s => s <= seq).sort((a, b) => a - b)
    for (const s of due) {
      const envelope = this.#pending.get(s)!
      this.#pending.delete(s)
      this.cursor = s
      this.#deps.release(envelope)
    }
    this.cursor = Math.max(this.cursor, seq)
    this.#drain()
  }

  async #fillLoop (): Promise<void> {
    for (;;) {
      const target = Math.max(this.#target, ...this.#pending.keys())
      if (this.cursor >= target) return
      if (target - this.cursor > MAX_FILL) this.#skipTo(target - MAX_FILL)
      const page = await this.#deps.fetchAfter(this.#convId, this.cursor, PAGE)
      for (const e of page.events) this.#accept(e)
      const last = page.events.at(-1)?.seq ?? this.cursor
      // history answered for everything up to its last event, and, on its last page, up
      // to the target (which exists, so it was committed before the page was read)
      this.#releaseThrough(page.has_more ? last : Math.max(last, target))
    }
  }

  /** Passes over everything up to `seq`: what lies below is left to history(). */
  #skipTo (seq: number): void {
    for (const s of this.#pending.keys()) if (s <= seq) this.#pending.delete(s)
    this.cursor = Math.max(this.cursor, seq)
  }
}
