// A queue being polled is a connected device for presence and push (DESIGN.md §4 "Push
// only when nobody is there"): from its first poll on this node until `lingerMs` after
// its last poll here ended, or until the queue ends. With polls alternating between
// nodes each node keeps its own registration; the presence service counts the user
// online while any of them lasts.
import type { DeviceState, PresenceDevice, PresenceService } from '../../core/presence/service.js'

interface Entry {
  readonly device: PresenceDevice
  polls: number
  timer: NodeJS.Timeout | null
}

export class PollingDevices {
  readonly #presence: PresenceService | undefined
  readonly #lingerMs: number
  readonly #byQueue = new Map<string, Entry>()

  constructor (presence: PresenceService | undefined, lingerMs: number) {
    this.#presence = presence
    this.#lingerMs = lingerMs
  }

  /** A poll of `queueId` began; `state` is what the client said of its app, if anything. */
  polling (queueId: string, userId: string, state: DeviceState | undefined): void {
    if (this.#presence === undefined) return
    let entry = this.#byQueue.get(queueId)
    if (entry === undefined) {
      entry = { device: this.#presence.attach(userId), polls: 0, timer: null }
      this.#byQueue.set(queueId, entry)
    }
    entry.polls++
    if (entry.timer !== null) clearTimeout(entry.timer)
    entry.timer = null
    entry.device.heard()
    if (state !== undefined) entry.device.setState(state)
  }

  /** A poll of `queueId` was answered (or its client went). */
  done (queueId: string): void {
    const entry = this.#byQueue.get(queueId)
    if (entry === undefined || --entry.polls > 0) return
    entry.timer = setTimeout(() => this.end(queueId), this.#lingerMs)
    entry.timer.unref()
  }

  /** The queue ended: its device goes now. */
  end (queueId: string): void {
    const entry = this.#byQueue.get(queueId)
    if (entry === undefined) return
    if (entry.timer !== null) clearTimeout(entry.timer)
    this.#byQueue.delete(queueId)
    entry.device.end()
  }

  endAll (): void {
    for (const id of [...this.#byQueue.keys()]) this.end(id)
  }

  get size (): number { return this.#byQueue.size }
}
