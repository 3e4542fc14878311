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

const require = createRequire(import.meta.url)

export interface BrokerState {
  persistence: unknown
  mq: unknown
  /** readiness check for /readyz; null in memory mode */
  ping: (() => Promise<void>) | null
  /** Caps offline queues and expires idle sessions (DESIGN.md §2) of the broker built on this state; call before it has clients. */
  attach(broker: Aedes): void
  close(): Promise<void>
}

interface Destroyable { destroy?: () => Promise<void> | void }
interface SubscriptionStore {
  addSubscriptions(client: { id: string }, subs: object[]): Promise<unknown>
  removeSubscriptions(client: { id: string }, topics: string[]): Promise<unknown>
}
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
 * mqemitter-redis' close() sends QUIT on both connections and drops the promise QUIT
 * returns (it waits for `end` instead). When the socket closes before the reply is
 * read, ioredis rejects that promise with "Connection is closed.", and an unhandled
 * rejection ends a Node process: a graceful shutdown would crash at its last step.
 */
function quietQuit (redis: Redis): Redis {
  const quit = redis.quit.bind(redis)
  redis.quit = ((...args: Parameters<Redis['quit']>) => {
    const reply = quit(...args)
    reply.catch(() => {}) // `end` follows either way, and that is what close() waits for
    return reply
  }) as Redis['quit']
  return redis
}

/**
 * aedes-persistence's BroadcastPersistence (inside aedes-persistence-redis) waits for its
 * own broadcast of a subscription change under the key clientId + first topic, one
 * waiter per key. Aedes calls addSubscriptions once per granted topic of a clean=false
 * SUBSCRIBE, each time with the whole packet, so a SUBSCRIBE with two granted topics
 * registers two waiters under one key: one is overwritten and its promise never
 * settles, and the client never gets its SUBACK. Calls for one packet are coalesced
 * into one, and one client's subscription changes run one at a time.
 */
function serializeSubscriptionChanges (persistence: SubscriptionStore): void {
  const add = persistence.addSubscriptions.bind(persistence)
  const remove = persistence.removeSubscriptions.bind(persistence)
  const tails = new Map<string, Promise<unknown>>()
  const pendingPackets = new WeakMap<object[], Promise<unknown>>()
  const oneAtATime = <T>(clientId: string, fn: () => Promise<T>): Promise<T> => {
    const run = (tails.get(clientId) ?? Promise.resolve()).then(fn, fn)
    const tail = run.then(() => {}, () => {})
    tails.set(clientId, tail)
    void tail.then(() => { if (tails.get(clientId) === tail) tails.delete(clientId) })
    return run
  }
  persistence.addSubscriptions = (client, subs) => {
    const pending = pendingPackets.get(subs) // Aedes passes the packet's own array each time
    if (pending !== undefined) return pending
    const run = oneAtATime(client.id, () => add(client, subs))
    pendingPackets.set(subs, run)
    return run
  }
  persistence.removeSubscriptions = (client, topics) => oneAtATime(client.id, () => remove(client, topics))
}


/** `log`: the node's logger (broker/server.ts should pass its own; a logger at the configured level is made otherwise) */
export function createBrokerState (config: Pick<Config, 'redisUrl' | 'offlineQueueMax' | 'sessionExpiryS' | 'logLevel' | 'redisTimeoutMs'>,
  log: Logger = createLogger(config.logLevel).child({ part: 'broker-state' })): BrokerState {
  let expiry: SessionExpiry | null = null
  if (config.redisUrl === null) {
    return {
      persistence: undefined, // Aedes makes its own in-memory persistence
      mq: undefined,
      ping: null,
      attach (broker) { expiry = limitMemorySessions(broker, config, log) },
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
  serializeSubscriptionChanges(persistence as unknown as SubscriptionStore)
  survivingRetainedStreamErrors(persistence as unknown as Parameters<typeof survivingRetainedStreamErrors>[0], log)
  const subConn = quietQuit(new Redis(config.redisUrl, SUBSCRIBER_OPTIONS))
  const pubConn = quietQuit(new Redis(config.redisUrl, oneShot))
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
  return {
    persistence,
    mq,
    ping: () => liveness.check(),
    attach (broker) { expiry = limitRedisSessions(broker, persistence, conn, config, log) },
    async close () {
      liveness.stop()
      await expiry?.stop()
      await persistence.destroy?.()
      conn.disconnect()
    }
  }
}
