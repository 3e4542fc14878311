// Many deadlines, one timer. A timer per connection (a token's expiry, a device's idle
// time) costs a Timeout object, its callback closure and their contexts: ~300 B that an
// idle session keeps for nothing. Here an item is one Set entry in the slot of its deadline
// (slots `resolutionMs` wide), and one timer is set for the earliest slot; every item of a
// slot is handed to `due` together, up to `resolutionMs` after its deadline, never before.

export class Deadlines<T> {
  readonly #slots = new Map<number, Set<T>>()
  /** the keys of #slots, earliest first */
  readonly #order = new SlotHeap()
  readonly #resolutionMs: number
  readonly #due: (item: T, nowMs: number) => void
  #timer: NodeJS.Timeout | null = null
  /** the slot the timer is set for */
  #armedFor = Infinity
  #size = 0

  /** `due` is called once per item whose deadline passed, unless the item was deleted first. */
  constructor (resolutionMs: number, due: (item: T, nowMs: number) => void) {
    if (!(resolutionMs >= 1)) throw new RangeError('resolutionMs must be at least 1')
    this.#resolutionMs = resolutionMs
    this.#due = due
  }

  /** Items waiting. */
  get size (): number { return this.#size }

  /** The slot of a deadline at `atMs` (epoch ms). */
  slotOf (atMs: number): number {
    return Math.ceil(atMs / this.#resolutionMs)
  }

  /** `item` is due at `atMs` (epoch ms). Answers its slot: what delete() takes. An item may be in several slots. */
  add (item: T, atMs: number): number {
    const slot = this.slotOf(atMs)
    let items = this.#slots.get(slot)
    if (items === undefined) {
      this.#slots.set(slot, items = new Set())
      this.#order.push(slot)
    }
    if (!items.has(item)) {
      items.add(item)
      this.#size++
    }
    if (slot < this.#armedFor) this.#arm(slot)
    return slot
  }

  delete (item: T, slot: number): void {
    // an emptied slot stays until its time comes: one (empty) Set per slot, however
    // often items come and go in it (a device reconnecting with the same token)
    if (this.#slots.get(slot)?.delete(item) === true) this.#size--
  }

  /** Forgets every item and stops the timer. */
  clear (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#armedFor = Infinity
    this.#slots.clear()
    this.#order.clear()
    this.#size = 0
  }

  #arm (slot: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#armedFor = slot
    this.#timer = setTimeout(() => this.#run(), Math.max(0, slot * this.#resolutionMs - Date.now()))
    this.#timer.unref()
  }

  #run (): void {
    this.#timer = null
    this.#armedFor = Infinity
    const now = Date.now()
    for (let slot = this.#order.peek(); slot !== undefined && slot * this.#resolutionMs <= now; slot = this.#order.peek()) {
      this.#order.pop()
      const items = this.#slots.get(slot) as Set<T>
      this.#slots.delete(slot)
      this.#size -= items.size
      for (const item of items) this.#due(item, now)
    }
    // `due` may have added items (to later slots) and armed the timer already
    const next = this.#order.peek()
    if (next !== undefined && next < this.#armedFor) this.#arm(next)
  }
}

/** A binary min-heap of slot numbers. */
class SlotHeap {
  readonly #a: number[] = []

  peek (): number | undefined { return this.#a[0] }

  clear (): void { this.#a.length = 0 }

  push (v: number): void {
    const a = this.#a
    let i = a.length
    a.push(v)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((a[parent] as number) <= v) break
      a[i] = a[parent] as number
      i = parent
    }
    a[i] = v
  }

  pop (): number | undefined {
    const a = this.#a
    const top = a[0]
    const last = a.pop()
    if (a.length === 0 || last === undefined) return top
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= a.length) break
      const r = l + 1
      const c = r < a.length && (a[r] as number) < (a[l] as number) ? r : l
      if ((a[c] as number) >= last) break
      a[i] = a[c] as number
      i = c
    }
    a[i] = last
    return top
  }
}
