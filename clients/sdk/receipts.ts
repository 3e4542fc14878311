// Outgoing receipts. Delivered receipts are sent by themselves for what the streams
// release, a short moment later so a burst of events makes one receipt per conversation;
// reads go at once. Receipts that find no connection, or lose theirs, wait for the next
// one (a receipt refused by the server is dropped): markers are max-wins, so only the
// highest seq per conversation needs to go.
import { ThreadlineApiError } from './http.js'
import type { Timers, TimerHandle } from './timers.js'
import type { Transport } from './transport.js'

/** Delivered receipts wait this long, so a burst of events makes one receipt. */
const DELIVERED_DELAY_MS = 100

interface Waiter { seq: number, done: () => void }

export class ReceiptSender {
  readonly #timers: Timers
  readonly #transport: () => Transport | null
  readonly #delivered = new Map<string, number>()
  readonly #read = new Map<string, number>()
  /** read() calls waiting for their receipt to be acknowledged, per conversation */
  readonly #waiters = new Map<string, Waiter[]>()
  #timer: TimerHandle | undefined

  readonly #refused: (err: Error) => void

  constructor (timers: Timers, transport: () => Transport | null, refused: (err: Error) => void) {
    this.#timers = timers
    this.#transport = transport
    this.#refused = refused
  }

  delivered (convId: string, seq: number): void {
    raise(this.#delivered, convId, seq)
    this.#timer ??= this.#timers.set(() => {
      this.#timer = undefined
      this.flush()
    }, DELIVERED_DELAY_MS)
  }

  /**
   * Resolves once a read receipt up to `seq` (or past it) was acknowledged, or refused
   * (reported to `refused`), or the client closed. It never rejects: an app that does not
   * wait for it must not get an unhandled rejection.
   */
  read (convId: string, seq: number): Promise<void> {
    raise(this.#read, convId, seq)
    const acked = new Promise<void>((resolve) => {
      const list = this.#waiters.get(convId) ?? []
      list.push({ seq, done: resolve })
      this.#waiters.set(convId, list)
    })
    this.flush()
    return acked
  }

  /** Sends what waits, if there is a connection. */
  flush (): void {
    const t = this.#transport()
    if (t === null) return
    for (const [convId, seq] of this.#read) {
      this.#read.delete(convId)
      // read implies delivered
      if ((this.#delivered.get(convId) ?? 0) <= seq) this.#delivered.delete(convId)
      t.receipt(convId, 'read', seq).then(() => this.#settle(convId, seq), (err: unknown) => {
        if (err instanceof ThreadlineApiError && !err.retryable) {
          this.#refused(err)
          this.#settle(convId, seq)
        } else raise(this.#read, convId, seq)
      })
    }
    for (const [convId, seq] of this.#delivered) {
      this.#delivered.delete(convId)
      t.receipt(convId, 'delivered', seq).catch((err: unknown) => {
        if (!(err instanceof ThreadlineApiError) || err.retryable) raise(this.#delivered, convId, seq)
      })
    }
  }

  /** Ends the waits for reads up to `seq`. */
  #settle (convId: string, seq: number): void {
    const list = this.#waiters.get(convId) ?? []
    const rest = list.filter(w => w.seq > seq)
    for (const w of list) if (w.seq <= seq) w.done()
    if (rest.length > 0) this.#waiters.set(convId, rest)
    else this.#waiters.delete(convId)
  }

  /** The client closes: reads that never went out won't. */
  close (): void {
    for (const list of this.#waiters.values()) for (const w of list) w.done()
    this.#waiters.clear()
  }
}

function raise (map: Map<string, number>, key: string, seq: number): void {
  map.set(key, Math.max(seq, map.get(key) ?? 0))
}
