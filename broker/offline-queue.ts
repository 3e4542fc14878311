// The per-session cap of DESIGN.md §2: a persistent session's offline queue keeps at most
// THREADLINE_OFFLINE_QUEUE_MAX packets, the oldest are dropped, and the device fills the
// seq gap from history (PostgreSQL is the record). Aedes' queues have no cap of their own.
// Kept off the send path: in memory a length check per enqueue; with Redis one script call
// every few enqueues per client, and an exact trim before each replay.
import type { Logger } from './logger.js'
import type { Telemetry } from '../core/telemetry.js'
import { MemoryQueues, type QueuedPacket } from './patches/memory-outgoing.js'
import type { RedisQueues } from './patches/redis-outgoing.js'

/**
 * In memory: trims right after the enqueue that passed the cap, and before a replay.
 * Not while the client is connected: its oldest packets are in flight (Aedes still updates
 * and acknowledges them), and a reader that falls that far behind is another limit's job.
 */
export function capMemoryQueues (persistence: object, cap: number, isConnected: (clientId: string) => boolean, telemetry?: Telemetry): MemoryQueues {
  const queues = new MemoryQueues((clientId: string, queue: QueuedPacket[], replay: boolean) => {
    if (queue.length > cap && (replay || !isConnected(clientId))) dropped(telemetry, queue.splice(0, queue.length - cap).length)
  })
  queues.install(persistence)
  return queues
}

function dropped (telemetry: Telemetry | undefined, count: number): void {
  if (count > 0 && telemetry?.watched('offlineDropped') === true) telemetry.emit('offlineDropped', { count })
}

interface RedisOutgoing {
  outgoingEnqueue(sub: { clientId: string }, packet: object): Promise<void>
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: object): Promise<void>
  outgoingStream(client: { id: string }): AsyncIterable<unknown>
}

/**
 * With Redis: a trim per enqueue would be a round trip per recipient per message, so each
 * client is trimmed every `cap / 10` (at most 100) enqueues seen by this node; a queue runs
 * at most that far past the cap per node between trims, and a replay trims exactly first.
 */
export function capRedisQueues (persistence: object, queues: RedisQueues, cap: number, log: Logger, telemetry?: Telemetry): { forget(clientId: string): void } {
  const store = persistence as RedisOutgoing
  const every = Math.max(1, Math.min(100, Math.floor(cap / 10)))
  const seen = new Map<string, number>()
  const counted = (clientId: string): void => {
    const n = (seen.get(clientId) ?? 0) + 1
    if (n < every) {
      seen.set(clientId, n)
      return
    }
    seen.delete(clientId)
    queues.trim(clientId, cap, false)
      .then((n) => dropped(telemetry, n))
      .catch((err: Error) => log.warn({ clientId, err: err.message }, 'offline queue trim failed'))
  }
  const enqueue = store.outgoingEnqueue.bind(store)
  const enqueueCombi = store.outgoingEnqueueCombi.bind(store)
  const stream = store.outgoingStream.bind(store)
  store.outgoingEnqueue = async (sub, packet) => {
    await enqueue(sub, packet)
    counted(sub.clientId)
  }
  store.outgoingEnqueueCombi = async (subs, packet) => {
    await enqueueCombi(subs, packet)
    for (const sub of subs) counted(sub.clientId)
  }
  store.outgoingStream = (client) => (async function * replay () {
    try {
      dropped(telemetry, await queues.trim(client.id, cap, true))
    } catch (err) {
      // the cap is a convenience: replay what is there rather than fail the CONNECT
      log.warn({ clientId: client.id, err: (err as Error).message }, 'offline queue trim before replay failed')
    }
    yield * stream(client)
  })()
  return { forget: (clientId) => { seen.delete(clientId) } }
}
