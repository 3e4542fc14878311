// Each conversation's last seq as this node knows it, so that checking a receipt's seq
// ("a seq beyond the conversation's last is refused") costs no store read in the common
// case. The node's own commits keep it current (the events-committed hook); a receipt for
// a seq above what the node knows (an event committed on another node, or the first
// receipt of a conversation since start) reads the store once. Reads are shared and
// spaced: at most one per conversation in flight and one per `minRefreshMs`, so a client
// that floods seqs beyond the end costs the store a bounded number of reads.
import { setTimeout as delay } from 'node:timers/promises'

/** The stored last seq, undefined when there is no such conversation. */
export type LastSeqLookup = (convId: string) => Promise<number | undefined>

export interface LastSeqOptions {
  /** conversations remembered (least recently used forgotten first) */
  readonly max: number
  readonly minRefreshMs: number
}

interface Known { seq: number, refreshedAt: number }
interface Refresh { promise: Promise<number | undefined>, sent: boolean }

export class LastSeqs {
  readonly #lookup: LastSeqLookup
  readonly #opts: LastSeqOptions
  /** insertion order = recency: a touched entry is moved to the end */
  readonly #known = new Map<string, Known>()
  readonly #refreshing = new Map<string, Refresh>()
  #reads = 0

  constructor (lookup: LastSeqLookup, opts: LastSeqOptions) {
    this.#lookup = lookup
    this.#opts = opts
  }

  /** store reads made so far */
  get reads (): number { return this.#reads }

  /** What this node knows, without asking anyone. */
  known (convId: string): number | undefined {
    return this.#known.get(convId)?.seq
  }

  /** An event with this seq was committed (here, or read from the store). */
  note (convId: string, seq: number, refreshedAt?: number): void {
    const entry = this.#known.get(convId)
    if (entry !== undefined) {
      if (seq > entry.seq) entry.seq = seq
      if (refreshedAt !== undefined) entry.refreshedAt = refreshedAt
      this.#known.delete(convId)
      this.#known.set(convId, entry)
      return
    }
    this.#known.set(convId, { seq, refreshedAt: refreshedAt ?? -Infinity })
    if (this.#known.size > this.#opts.max) {
      const oldest = this.#known.keys().next().value as string
      this.#known.delete(oldest)
    }
  }

  /**
   * The last seq, read from the store unless what is known already reaches `seq`.
   * A read that was sent before the caller arrived may predate the commit the caller
   * saw: when it answers less than `seq`, one more read decides.
   */
  async atLeast (convId: string, seq: number): Promise<number | undefined> {
    const known = this.known(convId)
    if (known !== undefined && known >= seq) return known
    const joinedSent = this.#refreshing.get(convId)?.sent === true
    const first = await this.#refresh(convId)
    if (joinedSent && (first === undefined || first < seq)) return await this.#refresh(convId)
    return first
  }

  #refresh (convId: string): Promise<number | undefined> {
    const running = this.#refreshing.get(convId)
    if (running !== undefined) return running.promise
    const refresh: Refresh = { promise: Promise.resolve(undefined), sent: false }
    refresh.promise = (async () => {
      const last = this.#known.get(convId)?.refreshedAt ?? -Infinity
      const wait = last + this.#opts.minRefreshMs - performance.now()
      if (wait > 0) await delay(wait)
      refresh.sent = true
      const at = performance.now()
      this.#reads++
      const seq = await this.#lookup(convId)
      if (seq === undefined) return undefined
      this.note(convId, seq, at)
      return this.known(convId)
    })().finally(() => this.#refreshing.delete(convId))
    this.#refreshing.set(convId, refresh)
    return refresh.promise
  }
}
