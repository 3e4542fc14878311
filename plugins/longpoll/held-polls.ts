// The polls this node holds, by queue. A poll arms its waiter before it reads the queue,
// so an event appended between the read and the wait still wakes it.
export type WaitEnd = 'wake' | 'timeout' | 'shutdown' | 'closed'

export interface Waiter {
  /** Resolves when the queue got events or expired ('wake'), after `ms` ('timeout'), or when the node stops. */
  wait(ms: number): Promise<WaitEnd>
  /** The client went: a wait in progress ends ('closed'). */
  close(): void
  cancel(): void
}

interface Armed {
  woken: boolean
  resolve: ((end: WaitEnd) => void) | null
}

export class HeldPolls {
  readonly #byQueue = new Map<string, Set<Armed>>()
  #stopped = false

  arm (queueId: string): Waiter {
    const armed: Armed = { woken: false, resolve: null }
    const set = this.#byQueue.get(queueId) ?? new Set<Armed>()
    set.add(armed)
    this.#byQueue.set(queueId, set)
    return {
      wait: (ms) => {
        if (this.#stopped) return Promise.resolve('shutdown')
        if (armed.woken) {
          armed.woken = false
          return Promise.resolve('wake')
        }
        return new Promise<WaitEnd>((resolve) => {
          const timer = setTimeout(() => end('timeout'), ms)
          const end = (how: WaitEnd): void => {
            clearTimeout(timer)
            armed.resolve = null
            armed.woken = false
            resolve(how)
          }
          armed.resolve = end
        })
      },
      close: () => { armed.resolve?.('closed') },
      cancel: () => {
        armed.resolve?.('timeout')
        set.delete(armed)
        if (set.size === 0 && this.#byQueue.get(queueId) === set) this.#byQueue.delete(queueId)
      }
    }
  }

  wake (queueId: string): void {
    const set = this.#byQueue.get(queueId)
    if (set === undefined) return
    for (const armed of set) {
      if (armed.resolve !== null) armed.resolve('wake')
      else armed.woken = true
    }
  }

  /** Answers every held poll (empty) and every later one at once: the node is stopping. */
  stop (): void {
    this.#stopped = true
    for (const set of this.#byQueue.values()) for (const armed of set) armed.resolve?.('shutdown')
  }

  /** polls held or being answered here */
  get size (): number {
    let n = 0
    for (const set of this.#byQueue.values()) n += set.size
    return n
  }
}
