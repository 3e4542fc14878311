// Event queues in this node's memory: the single-node store. Everything is bounded: a
// queue holds at most maxEvents events and maxBytes bytes (then it expires), a user at
// most perUser queues, and the sweep ends idle queues; tombstones are ids and times.
import type { PollResult, QueuedEvent, QueueLimits, QueueSpec, QueueStore } from './queue-store.js'
import { queuePayloadOf } from './queue-store.js'

/** expired ids remembered at most (a forgotten one answers 404 instead of 410) */
const MAX_TOMBSTONES = 100_000

interface Queue {
  readonly id: string
  spec: QueueSpec
  /** the id the next event gets */
  next: number
  /** unacknowledged events, oldest first */
  events: QueuedEvent[]
  bytes: number
  polledAt: number
}

export class MemoryQueueStore implements QueueStore {
  readonly #limits: QueueLimits
  readonly #queues = new Map<string, Queue>()
  readonly #byTopic = new Map<string, Set<Queue>>()
  /** per user: device id → queue */
  readonly #byUser = new Map<string, Map<string, Queue>>()
  /** expired queue id → [user id, forget at] */
  readonly #tombstones = new Map<string, [string, number]>()
  readonly #listeners: Array<(queueId: string) => void> = []

  constructor (limits: QueueLimits) {
    this.#limits = limits
  }

  async create (queueId: string, spec: QueueSpec, now: number): Promise<void> {
    const devices = this.#byUser.get(spec.userId) ?? new Map<string, Queue>()
    const same = devices.get(spec.deviceId)
    if (same !== undefined) this.#expire(same, now)
    while (devices.size >= this.#limits.perUser) {
      let oldest: Queue | undefined
      for (const q of devices.values()) if (oldest === undefined || q.polledAt < oldest.polledAt) oldest = q
      this.#expire(oldest as Queue, now)
    }
    const queue: Queue = { id: queueId, spec, next: 1, events: [], bytes: 0, polledAt: now }
    this.#queues.set(queueId, queue)
    devices.set(spec.deviceId, queue)
    this.#byUser.set(spec.userId, devices)
    this.#followTopics(queue)
  }

  append (topic: string, payload: Buffer, now: number): void {
    const followers = this.#byTopic.get(topic)
    if (followers === undefined) return
    const event = queuePayloadOf(topic, payload)
    if (event === null) return
    for (const queue of followers) {
      if (now - queue.polledAt > this.#limits.ttlMs) {
        this.#expire(queue, now)
        continue
      }
      queue.events.push({ id: queue.next++, payload: event })
      queue.bytes += event.length
      if (queue.events.length > this.#limits.maxEvents || queue.bytes > this.#limits.maxBytes) this.#expire(queue, now)
      else this.#wake(queue.id)
    }
  }

  /** The live queue of `userId`, or why there is none (an idle one expires here). */
  #live (queueId: string, userId: string, now: number): Queue | 'not_found' | 'expired' {
    const queue = this.#queues.get(queueId)
    if (queue === undefined || queue.spec.userId !== userId) {
      const tomb = this.#tombstones.get(queueId)
      return tomb !== undefined && tomb[0] === userId && tomb[1] > now ? 'expired' : 'not_found'
    }
    if (now - queue.polledAt > this.#limits.ttlMs) {
      this.#expire(queue, now)
      return 'expired'
    }
    return queue
  }

  async poll (queueId: string, userId: string, lastEventId: number, limit: number, now: number): Promise<PollResult> {
    const queue = this.#live(queueId, userId, now)
    if (typeof queue === 'string') return { kind: queue }
    const lastGiven = queue.next - 1
    if (lastEventId > lastGiven) return { kind: 'ahead', lastEventId: lastGiven }
    let acked = 0
    while (acked < queue.events.length && (queue.events[acked] as QueuedEvent).id <= lastEventId) {
      queue.bytes -= (queue.events[acked] as QueuedEvent).payload.length
      acked++
    }
    if (acked > 0) queue.events = queue.events.slice(acked)
    queue.polledAt = now
    return { kind: 'events', events: queue.events.slice(0, limit), lastEventId: lastGiven }
  }

  async follow (queueId: string, userId: string, topics: readonly string[], now: number): Promise<'ok' | 'not_found' | 'expired'> {
    const queue = this.#live(queueId, userId, now)
    if (typeof queue === 'string') return queue
    this.#unfollow(queue)
    queue.spec = { ...queue.spec, topics: [...topics] }
    this.#followTopics(queue)
    return 'ok'
  }

  async touch (queueId: string, now: number): Promise<void> {
    const queue = this.#queues.get(queueId)
    if (queue !== undefined) queue.polledAt = now
  }

  async delete (queueId: string, userId: string): Promise<boolean> {
    const queue = this.#queues.get(queueId)
    if (queue === undefined || queue.spec.userId !== userId) return false
    this.#expire(queue, Date.now())
    return true
  }

  async sweep (now: number): Promise<void> {
    for (const queue of this.#queues.values()) {
      if (now - queue.polledAt > this.#limits.ttlMs) this.#expire(queue, now)
    }
    for (const [id, [, until]] of this.#tombstones) if (until <= now) this.#tombstones.delete(id)
  }

  onWake (listener: (queueId: string) => void): void {
    this.#listeners.push(listener)
  }

  async stats (): Promise<{ queues: number, events: number }> {
    let events = 0
    for (const q of this.#queues.values()) events += q.events.length
    return { queues: this.#queues.size, events }
  }

  async close (): Promise<void> {
    this.#queues.clear()
    this.#byTopic.clear()
    this.#byUser.clear()
    this.#tombstones.clear()
  }

  #expire (queue: Queue, now: number): void {
    if (this.#queues.get(queue.id) !== queue) return
    this.#queues.delete(queue.id)
    this.#unfollow(queue)
    const devices = this.#byUser.get(queue.spec.userId)
    if (devices?.get(queue.spec.deviceId) === queue) devices.delete(queue.spec.deviceId)
    if (devices?.size === 0) this.#byUser.delete(queue.spec.userId)
    queue.events = []
    this.#tombstones.set(queue.id, [queue.spec.userId, now + this.#limits.tombstoneMs])
    // the oldest tombstone goes first: a forgotten one answers 404, and the client registers again either way
    if (this.#tombstones.size > MAX_TOMBSTONES) this.#tombstones.delete(this.#tombstones.keys().next().value as string)
    this.#wake(queue.id)
  }

  #followTopics (queue: Queue): void {
    for (const topic of queue.spec.topics) {
      const set = this.#byTopic.get(topic) ?? new Set<Queue>()
      set.add(queue)
      this.#byTopic.set(topic, set)
    }
  }

  #unfollow (queue: Queue): void {
    for (const topic of queue.spec.topics) {
      const set = this.#byTopic.get(topic)
      set?.delete(queue)
      if (set?.size === 0) this.#byTopic.delete(topic)
    }
  }

  #wake (queueId: string): void {
    for (const listener of this.#listeners) listener(queueId)
  }
}
