// Group commit (DESIGN.md §4 "Performance shape"): sends that arrive while a commit is
// in flight join the next transaction, so one commit's fixed cost is shared by every
// send waiting for it. Batches run one at a time and in arrival order, so a sender's
// later send never commits before an earlier one.
interface Waiting<I, O> {
  item: I
  lane: object | undefined
  resolve: (out: O) => void
  reject: (err: unknown) => void
}

export interface GroupCommitterOptions<I> {
  /** most items in one flush */
  maxBatch?: number
  /**
   * Most items queued (waiting for a batch). Past it, submit() holds the item back until
   * the queue has room; a caller that waits for the answer before reading more input (an
   * MQTT connection does: Aedes reads a socket again only once its packets are handled)
   * stops reading, so the backlog stays in the peers' buffers, not in our heap.
   */
  maxQueued?: number
  /**
   * The ordered stream an item belongs to (an MQTT connection), or undefined for none.
   * When a flush fails, the items of its lanes still queued fail with it, and so does
   * every later item of those lanes: one that committed now would overtake the failed
   * ones, which the client resends later [DESIGN.md §4 "Ordered"].
   */
  laneOf?: (item: I) => object | undefined
}

export class GroupCommitter<I, O> {
  readonly #flush: (items: I[]) => Promise<O[]>
  readonly #maxBatch: number
  readonly #maxQueued: number
  readonly #laneOf: (item: I) => object | undefined
  #queue: Array<Waiting<I, O>> = []
  /** items submitted while the queue was full, in submission order */
  #held: Array<Waiting<I, O>> = []
  #running: Promise<void> | null = null
  /** size of the batch being flushed */
  #flushing = 0
  /** lanes whose earlier item failed: whatever they submit now fails too */
  readonly #failedLanes = new WeakMap<object, unknown>()

  /** flush must answer one output per input, in order; if it throws, every item of the batch fails. */
  constructor (flush: (items: I[]) => Promise<O[]>, options: GroupCommitterOptions<I> = {}) {
    this.#flush = flush
    this.#maxBatch = options.maxBatch ?? 500
    this.#maxQueued = options.maxQueued ?? 10_000
    this.#laneOf = options.laneOf ?? (() => undefined)
  }

  /** Enqueues synchronously: the order of submit() calls is the commit order. */
  submit (item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const lane = this.#laneOf(item)
      if (lane !== undefined && this.#failedLanes.has(lane)) return reject(this.#failedLanes.get(lane))
      const waiting = { item, lane, resolve, reject }
      // held items keep their place: nothing overtakes them while they wait
      if (this.#queue.length >= this.#maxQueued || this.#held.length > 0) this.#held.push(waiting)
      else this.#queue.push(waiting)
      this.#running ??= this.#loop()
    })
  }

  /** items submitted and not answered yet: held, queued and in the batch being flushed */
  get pending (): number { return this.#flushing + this.#queue.length + this.#held.length }

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
        this.#admitHeld()
        this.#flushing = batch.length
        try {
          const out = await this.#flush(batch.map(w => w.item))
          batch.forEach((w, i) => w.resolve(out[i] as O))
        } catch (err) {
          for (const w of batch) w.reject(err)
          this.#failLanes(batch, err)
        }
        this.#flushing = 0
        this.#admitHeld()
      }
    } finally {
      this.#running = null
    }
  }

  #admitHeld (): void {
    const room = this.#maxQueued - this.#queue.length
    if (room > 0 && this.#held.length > 0) this.#queue.push(...this.#held.splice(0, room))
  }

  #failLanes (batch: ReadonlyArray<Waiting<I, O>>, err: unknown): void {
    let any = false
    for (const w of batch) {
      if (w.lane === undefined) continue
      this.#failedLanes.set(w.lane, err)
      any = true
    }
    if (!any) return
    const failed = (w: Waiting<I, O>): boolean => {
      if (w.lane === undefined || !this.#failedLanes.has(w.lane)) return false
      w.reject(err)
      return true
    }
    this.#queue = this.#queue.filter(w => !failed(w))
    this.#held = this.#held.filter(w => !failed(w))
  }
}
