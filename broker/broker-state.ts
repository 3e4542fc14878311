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
  // CommonJS packages. The package's main export is what Aedes 1.x takes (its MIGRATION.md
  // names aedes-persistence-redis >= 11.2.1): promise methods plus Node streams from
  // createRetainedStreamCombi/outgoingStream/streamWill, which Aedes .pipe()s. Its
  // asyncPersistence.js alone answers those with bare async generators, and the first
  // SUBSCRIBE then throws `stream.pipe is not a function` out of Aedes.
  const redisPersistence = require('aedes-persistence-redis') as (opts: object) => Destroyable
  const MQEmitterRedis = require('mqemitter-redis') as (opts: object) => unknown
  const conn = new Redis(config.redisUrl, { maxRetriesPerRequest: 3 })
  const persistence = redisPersistence({ conn, maxSessionDelivery: config.offlineQueueMax })
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
