// Outgoing receipts. Delivered receipts are sent by themselves for what the streams
// release, a short moment later so a burst of events makes one receipt per conversation;
// reads go at once. Receipts that find no connection, or lose theirs, wait for the next
// one: markers are max-wins, so only the highest seq per conversation needs to go.
import type { Timers, TimerHandle } from './timers.js'
import type { Transport } from './transport.js'

/** Delivered receipts wait this long, so a burst of events makes one receipt. */
const DELIVERED_DELAY_MS = 100

export class ReceiptSender {
  readonly #timers: Timers
  readonly #transport: () => Transport | null
  readonly #delivered = new Map<string, number>()
  readonly #read = new Map<string, number>()
  #timer: TimerHandle | undefined

  constructor (timers: Timers, transport: () => Transport | null) {
    this.#timers = timers
    this.#transport = transport
  }

  delivered (convId: string, seq: number): void {
    raise(this.#delivered, convId, seq)
    this.#timer ??= this.#timers.set(() => {
      this.#timer = undefined
      this.flush()
    }, DELIVERED_DELAY_MS)
  }

  read (convId: string, seq: number): void {
    raise(this.#read, convId, seq)
    this.flush()
  }

  /** Sends what waits, if there is a connection. */
  flush (): void {
    const t = this.#transport()
    if (t === null) return
    for (const [convId, seq] of this.#read) {
      this.#read.delete(convId)
      // read implies delivered
      if ((this.#delivered.get(convId) ?? 0) <= seq) this.#delivered.delete(convId)
      t.receipt(convId, 'read', seq).catch(() => this.#again(this.#read, convId, seq))
    }
    for (const [convId, seq] of this.#delivered) {
      this.#delivered.delete(convId)
      t.receipt(convId, 'delivered', seq).catch(() => this.#again(this.#delivered, convId, seq))
    }
  }

  /** A receipt lost with its connection goes with the next one; one the server refused is dropped. */
  #again (pending: Map<string, number>, convId: string, seq: number): void {
    if (this.#transport() === null) raise(pending, convId, seq)
  }
}

function raise (map: Map<string, number>, key: string, seq: number): void {
  map.set(key, Math.max(seq, map.get(key) ?? 0))
}
