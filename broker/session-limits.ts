// Puts the two bounds of DESIGN.md §2 on a broker's session state: the offline queue cap
// (broker/offline-queue.ts) and idle-session expiry (broker/session-expiry.ts), in memory
// or over aedes-persistence-redis.
import type { Aedes } from 'aedes'
import type { Redis } from 'ioredis'
import type { Config } from './config.js'
import type { Logger } from './logger.js'
import type { Telemetry } from '../core/telemetry.js'
import { capMemoryQueues, capRedisQueues } from './offline-queue.js'
import { RedisQueues } from './patches/redis-outgoing.js'
import { MemoryIdleIndex, SessionExpiry } from './session-expiry.js'
import { REDIS_IDLE_KEY, RedisIdleIndex } from './session-expiry-redis.js'

type Limits = Pick<Config, 'offlineQueueMax' | 'sessionExpiryS'>

interface SessionStore {
  subscriptionsByClient(client: { id: string }): Promise<Array<{ topic: string }>>
  removeSubscriptions(client: { id: string }, topics: string[]): Promise<unknown>
  cleanIncoming?: (client: { id: string }) => Promise<unknown>
}

// plain fields of an Aedes instance that its type declarations leave out
const sessionsOf = (broker: Aedes): { persistence: unknown, clients: Record<string, unknown> } =>
  broker as unknown as { persistence: unknown, clients: Record<string, unknown> }

async function removeSubscriptions (store: SessionStore, clientId: string): Promise<void> {
  const client = { id: clientId }
  const subs = await store.subscriptionsByClient(client)
  // through the persistence, so every node's subscription trie hears of it
  if (subs.length > 0) await store.removeSubscriptions(client, subs.map(s => s.topic))
}

/** Aedes' default in-memory persistence: call right after the broker is created. */
export function limitMemorySessions (broker: Aedes, limits: Limits, log: Logger, telemetry?: Telemetry): SessionExpiry {
  const { persistence, clients } = sessionsOf(broker)
  const store = persistence as SessionStore
  const isConnected = (clientId: string): boolean => clients[clientId] !== undefined
  const queues = capMemoryQueues(store, limits.offlineQueueMax, isConnected, telemetry)
  const expiry = new SessionExpiry(broker, new MemoryIdleIndex(), async (clientId) => {
    await removeSubscriptions(store, clientId)
    queues.drop(clientId) // after: no enqueue can land once the subscriptions are gone
    await store.cleanIncoming?.({ id: clientId })
  }, limits.sessionExpiryS, isConnected, log)
  expiry.start()
  return expiry
}

/** aedes-persistence-redis (`persistence`, on connection `conn`): call before the broker has clients. */
export function limitRedisSessions (broker: Aedes, persistence: object, conn: Redis, limits: Limits, log: Logger, telemetry?: Telemetry): SessionExpiry {
  const store = persistence as SessionStore
  const queues = new RedisQueues(conn, REDIS_IDLE_KEY)
  const counters = capRedisQueues(persistence, queues, limits.offlineQueueMax, log, telemetry)
  const expiry = new SessionExpiry(broker, new RedisIdleIndex(conn, broker.id), async (clientId) => {
    // before: the library DELs the queue list with the last subscription without releasing
    // the packets it points at (their keys would stay in Redis for good)
    await queues.drain(clientId)
    await removeSubscriptions(store, clientId)
    counters.forget(clientId)
  }, limits.sessionExpiryS, clientId => sessionsOf(broker).clients[clientId] !== undefined, log)
  expiry.start()
  return expiry
}
