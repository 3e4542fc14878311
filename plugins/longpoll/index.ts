// Long-poll fallback (DESIGN.md §6; docs/protocol.md "Long-poll"): an event queue per
// (user, device) for clients that can't hold an MQTT connection. It lives as a plugin,
// not in sync-api/, because it must see the broker's own publishes: every packet this
// node publishes to user/<u>/inbox, conv/<c>/typing or presence/<u> is appended to the
// queues following that topic (queue-store.ts), and a poll held on any node wakes.
// Queues live in memory on a single node and in Redis in a cluster (redis-store.ts).
import type { AedesPublishPacket, Client } from 'aedes'
import { definePlugin } from '../../broker/plugin.js'
import { connectRedis, type PluginRedis } from '../../broker/redis-connection.js'
import { PRESENCE_SERVICE } from '../../core/presence/service.js'
import { LONGPOLL_STATS } from '../../core/longpoll/stats.js'
import { HeldPolls } from './held-polls.js'
import { MemoryQueueStore } from './memory-store.js'
import { PollingDevices } from './polling-devices.js'
import type { QueueLimits, QueueStore } from './queue-store.js'
import { RedisQueueStore } from './redis-store.js'
import { longPollRoutes, type LongPollNode } from './routes.js'

export interface LongPollOptions {
  /** THREADLINE_LONGPOLL_QUEUE_TTL_S, in ms: a queue nobody polled for this long expires */
  readonly ttlMs: number
  /** THREADLINE_LONGPOLL_QUEUE_MAX: a queue whose backlog passes this many events expires */
  readonly maxEvents: number
  /** THREADLINE_LONGPOLL_LINGER_MS: a device counts as connected this long after its last poll ended */
  readonly lingerMs: number
}

/** bytes a queue's backlog may hold (events are at most the payload limit each) */
export const QUEUE_MAX_BYTES = 4 * 1024 * 1024
/** queues one user may hold at once; a new device's queue ends the least recently polled */
export const QUEUES_PER_USER = 20
/** how long an ended queue's id answers 410 (then 404) */
export const TOMBSTONE_MS = 24 * 3600 * 1000

const isQueueTopic = (topic: string): boolean => {
  const c = topic.charCodeAt(0)
  // u(ser/…/inbox), c(onv/…/typing), p(resence/…): the store checks the rest
  return c === 0x75 || c === 0x63 || c === 0x70
}

export const longPollPlugin = definePlugin<LongPollOptions>({
  name: 'longpoll',
  dependencies: ['auth', 'acl'],
  config: (env) => ({
    ttlMs: env.integer('THREADLINE_LONGPOLL_QUEUE_TTL_S', 600, 1, 7 * 86_400) * 1000,
    maxEvents: env.integer('THREADLINE_LONGPOLL_QUEUE_MAX', 1000, 1, 1_000_000),
    lingerMs: env.integer('THREADLINE_LONGPOLL_LINGER_MS', 30_000, 0, 3_600_000)
  }),

  async setup (ctx, options) {
    const log = ctx.log.child({ plugin: 'longpoll' })
    const limits: QueueLimits = {
      ttlMs: options.ttlMs,
      maxEvents: options.maxEvents,
      maxBytes: QUEUE_MAX_BYTES,
      perUser: QUEUES_PER_USER,
      tombstoneMs: TOMBSTONE_MS
    }
    let redis: PluginRedis | null = null
    let store: QueueStore
    if (ctx.config.redisUrl !== null) {
      redis = connectRedis(ctx.config.redisUrl, ctx.config.redisTimeoutMs, log, 'longpoll', {
        subscriber: true,
        // appends of one tick (a committed batch's fan-out) go to Redis in one write
        commands: { enableAutoPipelining: true }
      })
      store = new RedisQueueStore(redis.redis, redis.subscriber as NonNullable<PluginRedis['subscriber']>, limits, log)
    } else {
      store = new MemoryQueueStore(limits)
    }
    const held = new HeldPolls()
    const presence = ctx.services.find(PRESENCE_SERVICE)
    const devices = new PollingDevices(presence, options.lingerMs)
    store.onWake((queueId) => held.wake(queueId))

    // Aedes emits 'publish' only on the node that published the packet: each is appended once
    const onPublish = (packet: AedesPublishPacket, client: Client | null): void => {
      if (client !== null && client !== undefined) return // clients' packets on chat topics are never routed as they are
      if (!isQueueTopic(packet.topic)) return
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
      store.append(packet.topic, payload, Date.now())
    }
    ctx.broker.on('publish', onPublish)
    const sweepMs = Math.min(Math.max(options.ttlMs / 2, 500), 10_000)
    const sweeper = setInterval(() => {
      store.sweep(Date.now()).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'long-poll: sweep failed; the next one retries'))
    }, sweepMs)
    sweeper.unref()

    const node: LongPollNode = { ctx, options, store, held, devices, presence, stopping: false }
    nodes.set(ctx, node)
    ctx.services.provide(LONGPOLL_STATS, async () => ({ ...await store.stats(), held: held.size, devices: devices.size }))

    return async () => {
      node.stopping = true
      ctx.broker.off('publish', onPublish)
      clearInterval(sweeper)
      // held polls answer (empty) now: their clients poll again, on another node
      held.stop()
      devices.endAll()
      await store.close()
      redis?.close()
      nodes.delete(ctx)
    }
  },

  routes: (ctx) => {
    const node = nodes.get(ctx)
    if (node === undefined) throw new Error('the longpoll plugin was not set up on this node')
    return longPollRoutes(node)
  }
})

const nodes = new WeakMap<object, LongPollNode>()
