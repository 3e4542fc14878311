// Where Aedes keeps sessions, offline QoS 1 queues and retained messages, and how
// packets travel between nodes (DESIGN.md §1): in memory by default; with REDIS_URL,
// aedes-persistence-redis + mqemitter-redis, which is what makes several nodes one
// cluster.
import { createRequire } from 'node:module'
import { Redis } from 'ioredis'
import type { Config } from './config.js'

const require = createRequire(import.meta.url)

export interface BrokerState {
  persistence: unknown
  mq: unknown
  /** readiness check for /readyz; null in memory mode */
  ping: (() => Promise<void>) | null
  close(): Promise<void>
}

interface Destroyable { destroy?: () => Promise<void> | void }

export function createBrokerState (config: Pick<Config, 'redisUrl' | 'offlineQueueMax'>): BrokerState {
  if (config.redisUrl === null) {
    return { persistence: undefined, mq: undefined, ping: null, async close () {} }
  }
  // CommonJS packages; aedes-persistence-redis 11.2 keeps the async (aedes 1.x) API in this file
  const AsyncRedisPersistence = require('aedes-persistence-redis/asyncPersistence.js') as new (opts: object) => Destroyable
  const MQEmitterRedis = require('mqemitter-redis') as (opts: object) => unknown
  const conn = new Redis(config.redisUrl, { maxRetriesPerRequest: 3 })
  const persistence = new AsyncRedisPersistence({ conn, maxSessionDelivery: config.offlineQueueMax })
  const mq = MQEmitterRedis({ connectionString: config.redisUrl })
  return {
    persistence,
    mq,
    ping: async () => { await conn.ping() },
    async close () {
      await persistence.destroy?.()
      conn.disconnect()
    }
  }
}
