// Group commit (DESIGN.md §4 "Performance shape"): sends that arrive while a commit is
// in flight join the next transaction, so one commit's fixed cost is shared by every
// send waiting for it. Batches run one at a time and in arrival order, so a sender's
// later send never commits before an earlier one.
interface Waiting<I, O> {
  item: I
  resolve: (out: O) => void
  reject: (err: unknown) => void
}

export class GroupCommitter<I, O> {
  readonly #flush: (items: I[]) => Promise<O[]>
  readonly #maxBatch: number
  #queue: Array<Waiting<I, O>> = []
  #running: Promise<void> | null = null

  /** flush must answer one output per input, in order; if it throws, every item of the batch fails. */
  constructor (flush: (items: I[]) => Promise<O[]>, maxBatch = 500) {
    this.#flush = flush
    this.#maxBatch = maxBatch
  }

  /** Enqueues synchronously: the order of submit() calls is the commit order. */
  submit (item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
      this.#running ??= this.#loop()
    })
  }

  get pending (): number { return this.#queue.length }

  /** Resolves when everything submitted so far has been committed or failed. */
  async drain (): Promise<void> {
    while (this.#running !== null) await this.#running
  }

  async #loop (): Promise<void> {
    // let the rest of the current socket read (dispatched synchronously) join the first batch
    await Promise.resolve()
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch)
        try {
          const out = await this.#flush(batch.map(w => w.item))
          batch.forEach((w, i) => w.resolve(out[i] as O))
        } catch (err) {
          for (const w of batch) w.reject(err)
        }
      }
    } finally {
      this.#running = null
    }
  }
}
