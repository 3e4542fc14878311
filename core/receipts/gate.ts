// At most `max` tasks at a time; the others wait their turn in arrival order. Receipts
// share the store's connection pool with the send path: however many conversations have
// receipts to write or seqs to check, and however slow the store is, they hold at most
// this many connections, and the commits of sends never queue behind them.
export class Gate {
  readonly #max: number
  #running = 0
  readonly #waiting: Array<() => void> = []

  constructor (max: number) {
    this.#max = max
  }

  /** tasks running now, and waiting for a turn */
  get running (): number { return this.#running }
  get waiting (): number { return this.#waiting.length }

  async run<T> (task: () => Promise<T>): Promise<T> {
    if (this.#running < this.#max) this.#running++
    else await new Promise<void>(resolve => this.#waiting.push(resolve)) // the slot is handed over
    try {
      return await task()
    } finally {
      const next = this.#waiting.shift()
      if (next !== undefined) next()
      else this.#running--
    }
  }
}
