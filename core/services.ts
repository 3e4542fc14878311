// Typed services between plugins (and from plugins to the REST side). A plugin never
// imports another: the provider and its users share a key declared in core/, next to
// the interface it names, and the registry hands out what was provided under it.

/** Names a service and the type it has; `serviceKey<SendService>('messages.send')`. */
export interface ServiceKey<T> {
  readonly name: string
  /** carries T for the type checker only; never set */
  readonly type?: (value: T) => T
}

export function serviceKey<T> (name: string): ServiceKey<T> {
  return Object.freeze({ name })
}

export class Services {
  readonly #provided = new Map<string, unknown>()

  /** Offers a service; a key is provided once. */
  provide<T> (key: ServiceKey<T>, service: T): void {
    if (this.#provided.has(key.name)) throw new Error(`service ${key.name} is provided twice`)
    this.#provided.set(key.name, service)
  }

  /** The service under `key`; throws when no plugin set up so far provides it. */
  get<T> (key: ServiceKey<T>): T {
    if (!this.#provided.has(key.name)) {
      throw new Error(`service ${key.name} is not provided: register the plugin that provides it before the one that uses it`)
    }
    return this.#provided.get(key.name) as T
  }

  /** The service under `key`, or undefined: for optional collaborators. */
  find<T> (key: ServiceKey<T>): T | undefined {
    return this.#provided.get(key.name) as T | undefined
  }
}
