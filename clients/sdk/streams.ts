// The client's ConversationStreams, one per conversation, and where each starts. A stream
// starts from what the client knows when it first meets the conversation: at the
// conversation's last_seq when a sync or the list names it (what came before is history),
// just before the first event that arrives for it, or at 0 for one the user was just
// added to (everything in it is news).
import type { HttpApi } from './http.js'
import { ConversationStream, type HistoryPage } from './stream.js'
import type { Timers } from './timers.js'
import type { EventEnvelope } from './types.js'

export interface StreamsOptions {
  http: HttpApi
  timers: Timers
  release (envelope: EventEnvelope): void
  /** a conversation the client had not met: fetch its view */
  met (convId: string): void
  online (): boolean
}

/** How long a fill that failed while online waits before it is tried again. */
const REFILL_MS = 1000

export class Streams {
  readonly #o: StreamsOptions
  readonly #streams = new Map<string, ConversationStream>()
  /** the cursor each stream started from: events at or below it were never seen live */
  readonly #baselines = new Map<string, number>()
  /** conversations the user was added to and that have no stream yet */
  readonly #joined = new Set<string>()

  constructor (options: StreamsOptions) {
    this.#o = options
  }

  /** An event from a transport: released in order, once. */
  offer (e: EventEnvelope): void {
    this.#get(e.conv_id, e.seq - 1).offer(e)
  }

  /** The server says the conversation is at `lastSeq`: fill up to it (null when nothing is missing). */
  reached (convId: string, lastSeq: number): Promise<void> | null {
    const stream = this.#get(convId, lastSeq)
    return stream.cursor < lastSeq ? stream.fill(lastSeq) : null
  }

  /** The user was added: the conversation's stream, when it comes, starts at 0. */
  joined (convId: string): void {
    if (!this.#streams.has(convId)) this.#joined.add(convId)
  }

  /** Fills the gaps that are waiting (after a fill failed offline). */
  refill (): void {
    for (const stream of this.#streams.values()) if (stream.waiting > 0) void stream.fill()
  }

  forget (convId: string): void {
    this.#streams.delete(convId)
    this.#baselines.delete(convId)
    this.#joined.delete(convId)
  }

  /** True when every event of the conversation above `seq`, up to `lastSeq`, went through its stream. */
  sawAllAbove (convId: string, seq: number, lastSeq: number): boolean {
    const baseline = this.#baselines.get(convId)
    const stream = this.#streams.get(convId)
    return baseline !== undefined && stream !== undefined && seq >= baseline && stream.cursor >= lastSeq
  }

  #get (convId: string, cursor: number): ConversationStream {
    let stream = this.#streams.get(convId)
    if (stream !== undefined) return stream
    const start = this.#joined.delete(convId) ? 0 : Math.max(0, cursor)
    stream = new ConversationStream(convId, start, {
      fetchAfter: (c, afterSeq, limit) => this.#fetchAfter(c, afterSeq, limit),
      release: e => this.#o.release(e),
      fillFailed: c => this.#fillFailed(c)
    })
    this.#streams.set(convId, stream)
    this.#baselines.set(convId, start)
    this.#o.met(convId)
    return stream
  }

  async #fetchAfter (convId: string, afterSeq: number, limit: number): Promise<HistoryPage> {
    const { body } = await this.#o.http.request<HistoryPage>('GET', `/v1/conversations/${convId}/events`, { query: { after_seq: afterSeq, limit } })
    return body
  }

  /** Offline, the next connection refills; online (a 503, say), it is tried again soon. */
  #fillFailed (convId: string): void {
    this.#o.timers.set(() => {
      const stream = this.#streams.get(convId)
      if (stream !== undefined && stream.waiting > 0 && this.#o.online()) void stream.fill()
    }, REFILL_MS)
  }
}
