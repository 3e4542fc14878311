// The default outbox storage: in memory, so it lives as long as the client's process. An
// app that must not lose sends across restarts passes its own (localStorage, a file, …).
import type { OutboxEntry, OutboxStorage } from './types.js'

export class MemoryOutboxStorage implements OutboxStorage {
  #entries: OutboxEntry[] = []

  async load (): Promise<OutboxEntry[]> {
    return this.#entries.map(e => ({ ...e }))
  }

  async save (entries: OutboxEntry[]): Promise<void> {
    this.#entries = entries.map(e => ({ ...e }))
  }
}
