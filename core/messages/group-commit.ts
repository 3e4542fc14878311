// Group commit (DESIGN.md §4 "Performance shape"): sends that arrive while a commit is
// in flight join the next transaction, so one commit's fixed cost is shared by every
// send waiting for it. Batches start in arrival order. With `concurrency` > 1 more than
// one batch may be in flight, on separate connections, but never two holding the same
// key (a conversation): an item whose key is in flight waits, and so does every later
// item of that key, so a key's items still commit one batch after another, in order.
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
  /** most batches in flight at once (default 1: one at a time) */
  concurrency?: number
  /** what two batches in flight at once must not share (default: every item the same key) */
  keyOf?: (item: I) => string
  /**
   * PostgreSQL's commit_delay at our level: when a batch finished less than this many ms
   * ago and fewer than GATHER_ENOUGH items wait, the next batch waits out the rest of
   * this time for more to join. A lone send on an idle node never waits. 0: never.
   */
  gatherMs?: number
}

/** queued items that start a batch at once, whatever gatherMs says */
export const GATHER_ENOUGH = 8

export class GroupCommitter<I, O> {
  readonly #flush: (items: I[]) => Promise<O[]>
  readonly #maxBatch: number
  readonly #maxQueued: number
  readonly #laneOf: (item: I) => object | undefined
  readonly #concurrency: number
  readonly #keyOf: (item: I) => string
  #queue: Array<Waiting<I, O>> = []
  /** items submitted while the queue was full, in submission order */
  #held: Array<Waiting<I, O>> = []
  /** a pump is due at the next microtask */
  #scheduled = false
  /** batches in flight */
  #inFlight = 0
  /** the keys of the batches in flight */
  readonly #busy = new Set<string>()
  /** items of the batches in flight */
  #flushing = 0
  /** drain() calls waiting for nothing to be in flight or queued */
  #idleWaiters: Array<() => void> = []
  /** lanes whose earlier item failed: whatever they submit now fails too */
  readonly #failedLanes = new WeakMap<object, unknown>()
  readonly #gatherMs: number
  /** performance.now() when the last batch finished */
  #lastFinished = -Infinity
  /** the pump waiting out a gathering window */
  #gathering: NodeJS.Timeout | null = null

  /** flush must answer one output per input, in order; if it throws, every item of the batch fails. */
  constructor (flush: (items: I[]) => Promise<O[]>, options: GroupCommitterOptions<I> = {}) {
    this.#flush = flush
    this.#maxBatch = options.maxBatch ?? 500
    this.#maxQueued = options.maxQueued ?? 10_000
    this.#laneOf = options.laneOf ?? (() => undefined)
    this.#concurrency = Math.max(1, options.concurrency ?? 1)
    this.#keyOf = options.keyOf ?? (() => '')
    this.#gatherMs = options.gatherMs ?? 0
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
      this.#schedule()
    })
  }

  /** items submitted and not answered yet: held, queued and in the batches being flushed */
  get pending (): number { return this.#flushing + this.#queue.length + this.#held.length }

  /** Resolves when everything submitted so far has been committed or failed. */
  async drain (): Promise<void> {
    while (this.#inFlight > 0 || this.#queue.length > 0 || this.#held.length > 0 || this.#scheduled) {
      await new Promise<void>(resolve => this.#idleWaiters.push(resolve))
    }
  }

  // a microtask later: the rest of the current socket read (dispatched synchronously)
  // joins the batch
  #schedule (): void {
    if (this.#scheduled) return
    this.#scheduled = true
    queueMicrotask(() => {
      this.#scheduled = false
      this.#pump()
    })
  }

  #pump (): void {
    if (this.#gathers()) return
    while (this.#inFlight < this.#concurrency && this.#queue.length > 0) {
      const batch = this.#take()
      if (batch.length === 0) break // everything queued waits for a key in flight
      this.#admitHeld()
      void this.#run(batch)
    }
    if (this.#inFlight === 0) for (const wake of this.#idleWaiters.splice(0)) wake()
  }

  /** Whether the next batch waits for more items (gatherMs): then a timer pumps later. */
  #gathers (): boolean {
    if (this.#gatherMs <= 0 || this.#inFlight > 0 || this.#queue.length === 0 || this.#queue.length >= GATHER_ENOUGH) {
      if (this.#gathering !== null) {
        clearTimeout(this.#gathering)
        this.#gathering = null
      }
      return false
    }
    const left = this.#lastFinished + this.#gatherMs - performance.now()
    if (left <= 0) return false
    this.#gathering ??= setTimeout(() => {
      this.#gathering = null
      this.#lastFinished = -Infinity
      this.#pump()
    }, left)
    return true
  }

  /** The next batch: the queue's head, leaving for later the items whose key is in flight. */
  #take (): Array<Waiting<I, O>> {
    if (this.#busy.size === 0) return this.#queue.splice(0, this.#maxBatch)
    const batch: Array<Waiting<I, O>> = []
    const rest: Array<Waiting<I, O>> = []
    // a key once passed over stays passed over: its later items must not overtake it
    const blocked = new Set<string>()
    // only the queue's first maxBatch items are looked at: a backlog of a key in flight
    // costs each pump a bounded scan, and what lies beyond waits its turn
    const scan = Math.min(this.#queue.length, this.#maxBatch)
    for (let i = 0; i < scan; i++) {
      const w = this.#queue[i] as Waiting<I, O>
      const key = this.#keyOf(w.item)
      if (!this.#busy.has(key) && !blocked.has(key)) batch.push(w)
      else {
        blocked.add(key)
        rest.push(w)
      }
    }
    if (batch.length > 0) this.#queue = scan === this.#queue.length ? rest : rest.concat(this.#queue.slice(scan))
    return batch
  }

  async #run (batch: Array<Waiting<I, O>>): Promise<void> {
    const keys = new Set<string>()
    for (const w of batch) keys.add(this.#keyOf(w.item))
    for (const key of keys) this.#busy.add(key)
    this.#inFlight++
    this.#flushing += batch.length
    try {
      const out = await this.#flush(batch.map(w => w.item))
      batch.forEach((w, i) => w.resolve(out[i] as O))
    } catch (err) {
      for (const w of batch) w.reject(err)
      this.#failLanes(batch, err)
    } finally {
      this.#flushing -= batch.length
      for (const key of keys) this.#busy.delete(key)
      this.#inFlight--
      this.#lastFinished = performance.now()
      this.#admitHeld()
      this.#pump()
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
