// Where Aedes keeps sessions, offline QoS 1 queues and retained messages, and how
// packets travel between nodes (DESIGN.md §1): in memory by default; with REDIS_URL,
// aedes-persistence-redis + mqemitter-redis, which is what makes several nodes one
// cluster.
import { createRequire } from 'node:module'
import type { Aedes } from 'aedes'
import { Redis, type RedisOptions } from 'ioredis'
import type { Config } from './config.js'
import { createLogger, type Logger } from './logger.js'
import { limitMemorySessions, limitRedisSessions } from './session-limits.js'
import type { SessionExpiry } from './session-expiry.js'
import { deliverLocallyFirst, type RedisEmitter } from './patches/mqemitter-redis-local-first.js'
import { RedisLiveness } from './redis-liveness.js'
import { survivingRetainedStreamErrors } from './patches/retained-stream-errors.js'
import { quietQuit } from './patches/ioredis-quiet-quit.js'
import type { BrokerStateView } from '../core/broker-state.js'
import type { Telemetry } from '../core/telemetry.js'
import { quietResubscribe } from './patches/ioredis-quiet-resubscribe.js'
import { hearUnawaitedPersistenceCommands } from './patches/persistence-unheard-rejections.js'
import { serializeSubscriptionChanges, type SubscriptionStore } from './patches/redis-subscription-changes.js'

const require = createRequire(import.meta.url)

export interface BrokerState extends BrokerStateView {
  persistence: unknown
  mq: unknown
  /** readiness check for /readyz; null in memory mode */
  ping: (() => Promise<void>) | null
  /** Caps offline queues and expires idle sessions (DESIGN.md §2) of the broker built on this state; call before it has clients. */
  attach(broker: Aedes): void
  close(): Promise<void>
}

interface Destroyable { destroy?: () => Promise<void> | void }
interface EmitterState { state: { on(event: 'error', fn: (err: Error) => void): void } }

// ioredis 5.8+ sends a (P)SUBSCRIBE issued between `connect` and `ready` at once (it is
// allowed while Redis loads), and its own ready check (INFO) and CLIENT SETINFO then
// fail on what has become a subscriber connection: "Connection in subscriber mode, only
// subscriber commands may be used" as an uncaught rejection (redis/ioredis#2037, fixed
// in 6.0). Aedes and the membership cache subscribe right while the node starts, so
// the subscriber connection skips both handshake commands; a pure subscriber needs
// neither.
const SUBSCRIBER_OPTIONS: RedisOptions = { enableReadyCheck: false, disableClientInfo: true }

/**
 * `log`: the node's logger (broker/server.ts should pass its own; a logger at the configured
 * level is made otherwise). `telemetry`: told of offline queue drops.
 */
export function createBrokerState (config: Pick<Config, 'redisUrl' | 'offlineQueueMax' | 'sessionExpiryS' | 'logLevel' | 'redisTimeoutMs'>,
  log: Logger = createLogger(config.logLevel).child({ part: 'broker-state' }), telemetry?: Telemetry): BrokerState {
  let expiry: SessionExpiry | null = null
  const sessionsAway = async (): Promise<number> => await expiry?.away() ?? 0
  if (config.redisUrl === null) {
    return {
      persistence: undefined, // Aedes makes its own in-memory persistence
      mq: undefined,
      ping: null,
      redisUp: () => null,
      sessionsAway,
      attach (broker) { expiry = limitMemorySessions(broker, config, log, telemetry) },
      async close () { await expiry?.stop() }
    }
  }
  // CommonJS packages. The package's main export is what Aedes 1.x takes (its MIGRATION.md
  // names aedes-persistence-redis >= 11.2.1): promise methods plus Node streams from
  // createRetainedStreamCombi/outgoingStream/streamWill, which Aedes .pipe()s. Its
  // asyncPersistence.js alone answers those with bare async generators, and the first
  // SUBSCRIBE then throws `stream.pipe is not a function` out of Aedes.
  const redisPersistence = require('aedes-persistence-redis') as (opts: object) => Destroyable
  const MQEmitterRedis = require('mqemitter-redis') as (opts: object) => EmitterState
  // A hung Redis answers nothing and closes nothing: every command gets a deadline, so
  // what waits on Redis (Aedes' session store, fan-out publishes) fails in bounded time.
  // A command its caller was told had failed is not sent again after a reconnect.
  // The subscriber gets no commandTimeout: after a reconnect ioredis resubscribes with
  // promises nobody holds, and a timeout would reject them unheard (an unhandled
  // rejection ends the process); its liveness is checked by PING instead (see
  // redis-liveness.ts), and a SUBSCRIBE sent into a hang takes effect on the next
  // connection, which ioredis sends it on again.
  const oneShot: RedisOptions = { commandTimeout: config.redisTimeoutMs, autoResendUnfulfilledCommands: false }
  const conn = new Redis(config.redisUrl, { ...oneShot, maxRetriesPerRequest: 3 })
  // without a listener ioredis prints connection errors to the console; ioredis retries
  // on its own, commands in flight fail and their callers answer for them
  conn.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis connection error (persistence)'))
  const persistence = redisPersistence({ conn, maxSessionDelivery: config.offlineQueueMax })
  hearUnawaitedPersistenceCommands(conn, persistence as unknown as Parameters<typeof hearUnawaitedPersistenceCommands>[1], log)
  serializeSubscriptionChanges(persistence as unknown as SubscriptionStore)
  survivingRetainedStreamErrors(persistence as unknown as Parameters<typeof survivingRetainedStreamErrors>[0], log)
  const subConn = quietResubscribe(quietQuit(new Redis(config.redisUrl, SUBSCRIBER_OPTIONS), config.redisTimeoutMs))
  const pubConn = quietQuit(new Redis(config.redisUrl, oneShot), config.redisTimeoutMs)
  const mq = MQEmitterRedis({ connectionString: config.redisUrl, subConn, pubConn })
  // mqemitter-redis re-emits every connection error on `state`, an EventEmitter nobody
  // else listens to: unheard, that `error` event throws and takes the whole node down
  // at the first Redis hiccup. ioredis reconnects and resubscribes by itself.
  mq.state.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis connection error (cluster emitter)'))
  const liveness = new RedisLiveness([
    { name: 'persistence', redis: conn },
    { name: 'publisher', redis: pubConn },
    { name: 'subscriber', redis: subConn }
  ], config.redisTimeoutMs, log)
  deliverLocallyFirst(mq as unknown as RedisEmitter, {
    busUp: () => liveness.isUp('publisher'),
    onPublishError: (err) => liveness.hung('publisher', err),
    timeoutMs: config.redisTimeoutMs,
    log
  })
  const connections = ['persistence', 'publisher', 'subscriber']
  return {
    persistence,
    mq,
    ping: () => liveness.check(),
    redisUp: () => connections.every(name => liveness.isUp(name)),
    sessionsAway,
    attach (broker) { expiry = limitRedisSessions(broker, persistence, conn, config, log, telemetry) },
    async close () {
      liveness.stop()
      await expiry?.stop()
      await persistence.destroy?.()
      conn.disconnect()
    }
  }
}
