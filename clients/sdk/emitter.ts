// A small typed emitter, so the SDK carries no node:events into browsers. A listener that
// throws does not stop the others, nor the client: the error is reported on 'error'
// (or, for an 'error' listener itself, dropped) rather than thrown into the transport.
type Listener = (...args: never[]) => void

export class TypedEmitter<Events extends { [K in keyof Events]: Listener }> {
  readonly #listeners = new Map<keyof Events, Set<Listener>>()

  on<K extends keyof Events> (event: K, listener: Events[K]): this {
    let set = this.#listeners.get(event)
    if (set === undefined) this.#listeners.set(event, (set = new Set()))
    set.add(listener)
    return this
  }

  off<K extends keyof Events> (event: K, listener: Events[K]): this {
    this.#listeners.get(event)?.delete(listener)
    return this
  }

  once<K extends keyof Events> (event: K, listener: Events[K]): this {
    const wrapper = ((...args: Parameters<Events[K]>) => {
      this.off(event, wrapper)
      listener(...args)
    }) as Events[K]
    return this.on(event, wrapper)
  }

  listenerCount (event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0
  }

  protected emit<K extends keyof Events> (event: K, ...args: Parameters<Events[K]>): void {
    const set = this.#listeners.get(event)
    if (set === undefined) return
    for (const listener of [...set]) {
      try {
        (listener as (...a: Parameters<Events[K]>) => void)(...args)
      } catch (err) {
        if (event !== 'error') this.emit('error' as K, ...([err] as unknown as Parameters<Events[K]>))
      }
    }
  }

  protected removeAllListeners (): void {
    this.#listeners.clear()
  }
}
