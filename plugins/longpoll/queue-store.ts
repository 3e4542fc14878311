// Where event queues live (docs/protocol.md "Long-poll"): in this node's memory on a
// single node, in Redis in a cluster (redis-store.ts), behind one interface so that the
// routes and the broker tap don't care which. A queue follows topics (its user's inbox,
// typing of some conversations, presence of some users); an append to a topic goes to
// every live queue that follows it, numbered by the queue's own counter (1, 2, 3, …).
// Acknowledged events are dropped at the next poll; a queue past its backlog bounds or
// idle past its TTL expires and leaves a tombstone, so that its next poll answers 410.

export interface QueueSpec {
  readonly userId: string
  readonly deviceId: string
  /** the topics whose packets the queue carries */
  readonly topics: readonly string[]
}

export interface QueueLimits {
  /** a queue nobody polled for this long expires */
  readonly ttlMs: number
  /** a queue whose unacknowledged backlog passes this many events expires */
  readonly maxEvents: number
  /** … or this many bytes */
  readonly maxBytes: number
  /** queues one user may hold; a new device's queue ends the least recently polled */
  readonly perUser: number
  /** how long an expired queue's id still answers 410 rather than 404 */
  readonly tombstoneMs: number
}

export interface QueuedEvent {
  readonly id: number
  /** a JSON object, as published (typing and presence with their `t` added) */
  readonly payload: Buffer
}

export type PollResult =
  | { readonly kind: 'events', readonly events: readonly QueuedEvent[], readonly lastEventId: number }
  /** no such queue, or another user's: the two are not told apart */
  | { readonly kind: 'not_found' }
  | { readonly kind: 'expired' }
  /** the client acknowledged an id the queue never gave out */
  | { readonly kind: 'ahead', readonly lastEventId: number }

export interface QueueStore {
  /** A new queue; one of the same (user, device) ends (its id answers 410). */
  create(queueId: string, spec: QueueSpec, now: number): Promise<void>
  /**
   * Appends what was published on `topic` (turned into a queue's event by queuePayloadOf)
   * to every live queue following it; never throws (a failure is the store's to handle).
   */
  append(topic: string, payload: Buffer, now: number): void
  /**
   * Drops the events up to `lastEventId` (the client processed them), marks the queue
   * polled, and returns up to `limit` events after it.
   */
  poll(queueId: string, userId: string, lastEventId: number, limit: number, now: number): Promise<PollResult>
  /**
   * Replaces what the queue follows (`topics`, its inbox among them); its events and ids
   * stay. 'not_found' and 'expired' as poll() tells them.
   */
  follow(queueId: string, userId: string, topics: readonly string[], now: number): Promise<'ok' | 'not_found' | 'expired'>
  /** Marks the queue polled now (a held poll answering). */
  touch(queueId: string, now: number): Promise<void>
  /** Ends the queue of `userId`; false when there is none live. */
  delete(queueId: string, userId: string): Promise<boolean>
  /** Expires the queues idle past their TTL. */
  sweep(now: number): Promise<void>
  /** `listener` hears the id of every queue that got events or expired, on any node. */
  onWake(listener: (queueId: string) => void): void
  /** Live queues and held events here (for tests and diagnostics; a cluster store counts Redis). */
  stats(): Promise<{ queues: number, events: number }>
  close(): Promise<void>
}

/** Turns what a topic carries into a queue's JSON object (null: a queue never carries it). */
export function queuePayloadOf (topic: string, payload: Buffer): Buffer | null {
  if (payload.length < 3 || payload[0] !== 0x7b /* { */) return null
  if (topic.startsWith('user/')) return topic.endsWith('/inbox') ? payload : null
  if (topic.startsWith('conv/')) {
    if (!topic.endsWith('/typing')) return null
    const convId = topic.slice('conv/'.length, -'/typing'.length)
    return Buffer.concat([Buffer.from(`{"t":"typing","conv_id":${JSON.stringify(convId)},`), payload.subarray(1)])
  }
  if (topic.startsWith('presence/')) return Buffer.concat([Buffer.from('{"t":"presence",'), payload.subarray(1)])
  return null
}
