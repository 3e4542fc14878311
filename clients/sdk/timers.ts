// Every timer a client starts goes through one Timers, so close() can end them all: a
// closed client keeps no process alive and fires nothing later.
export type TimerHandle = ReturnType<typeof setTimeout>

export class Timers {
  readonly #live = new Set<TimerHandle>()
  readonly #wakers = new Set<() => void>()
  #closed = false

  /** Runs `fn` after `ms`, unless cleared or closed first. */
  set (fn: () => void, ms: number): TimerHandle {
    const handle = setTimeout(() => {
      this.#live.delete(handle)
      fn()
    }, Math.max(0, ms))
    if (this.#closed) clearTimeout(handle)
    else this.#live.add(handle)
    return handle
  }

  clear (handle: TimerHandle | undefined): void {
    if (handle === undefined) return
    clearTimeout(handle)
    this.#live.delete(handle)
  }

  /** A promise that resolves after `ms`, or at once when the timers are closed. */
  sleep (ms: number): Promise<void> {
    return new Promise(resolve => {
      if (this.#closed) return resolve()
      const handle = this.set(() => { this.#wakers.delete(wake); resolve() }, ms)
      const wake = (): void => { this.clear(handle); this.#wakers.delete(wake); resolve() }
      this.#wakers.add(wake)
    })
  }

  get size (): number {
    return this.#live.size
  }

  close (): void {
    this.#closed = true
    for (const handle of this.#live) clearTimeout(handle)
    this.#live.clear()
    for (const wake of [...this.#wakers]) wake()
    this.#wakers.clear()
  }
}
