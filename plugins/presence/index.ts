// Presence (DESIGN.md §3, §4, §6): online while any device of a user is connected, on any
// node; away when every device said so on `user/<me>/presence` or was silent for
// THREADLINE_PRESENCE_IDLE_S; offline, with last_seen, THREADLINE_PRESENCE_GRACE_MS after
// the last device went (or at once when its node died). Published retained on
// `presence/<u>` on changes only, seen by whom `<u>`'s presence_visibility allows.
// Provides PRESENCE_SERVICE (core/presence/service.ts): "is any device of u connected?".
import type { Client } from 'aedes'
import { definePlugin, type PluginContext } from '../../broker/plugin.js'
import { identityOf } from '../../broker/identity.js'
import { emitterOf } from '../../broker/membership.js'
import { connectRedis } from '../../broker/redis-connection.js'
import { PRESENCE_SERVICE, type PresenceDevice, type PresenceService } from '../../core/presence/service.js'
import { serviceKey } from '../../core/services.js'
import { chatTopicOf, inboxTopic, parseChatTopic, presenceTopic } from '../../core/topics.js'
import { errorEnvelope } from '../../core/messages/envelopes.js'
import { parseJsonPayload } from '../../core/messages/parse-send.js'
import { PresenceSet, ThreadlineError, compileCheck, type PresenceMessage } from '../../schemas/index.js'
import { MemoryBackend, type PresenceBackend, type Transition } from './backend.js'
import { RedisBackend } from './redis-backend.js'
import { PresenceGrants } from './grants.js'
import { LastSeenWriter } from './last-seen.js'
import { PresenceTracker, type TrackerStats } from './tracker.js'
import { lookup, presenceRoutes } from './routes.js'

export interface PresenceOptions {
  /** THREADLINE_PRESENCE_GRACE_MS: how long after its last device went a user stays as they were */
  readonly graceMs: number
  /** THREADLINE_PRESENCE_IDLE_S: a device nothing was heard from for this long counts as away */
  readonly idleS: number
  /** THREADLINE_PRESENCE_HEARTBEAT_MS: cluster heartbeat; a node silent for 3 of them is dead */
  readonly heartbeatMs: number
}

/** presence/<u> subscriptions one connection may hold (beyond it: SUBACK 0x80) */
export const MAX_PRESENCE_SUBSCRIPTIONS = 1000
/** least time between two updates of one user's device states from one node */
export const STATE_SYNC_MS = 500
/** error events for bad `user/<me>/presence` payloads: a burst per connection, then one a second */
export const ERROR_BURST = 10
/** backstop re-check of every grant */
const RECHECK_ALL_MS = 60_000
/** how long a shutdown waits for Redis to take this node's last changes */
const STOP_WAIT_MS = 5000
/** the cluster channel of visibility changes (clients can never publish to `$threadline/`) */
const VISIBILITY_TOPIC = '$threadline/presence-visibility'

export interface PresenceStats extends TrackerStats {
  readonly grants: number
}

/** Counters for tests and diagnostics. */
export const PRESENCE_STATS = serviceKey<() => PresenceStats>('presence.stats')

/** What setup builds and the hooks and routes use, per node. */
export interface PresenceNode {
  readonly ctx: PluginContext
  readonly tracker: PresenceTracker
  readonly grants: PresenceGrants
  readonly lastSeen: LastSeenWriter
  /** The user changed their visibility: re-check the grants of their presence here, and tell the other nodes. */
  visibilityChanged(userId: string): Promise<void>
}

const nodes = new WeakMap<PluginContext, PresenceNode>()
const checkSet = compileCheck(PresenceSet, 'presence')
const nodeOf = (ctx: PluginContext): PresenceNode => {
  const node = nodes.get(ctx)
  if (node === undefined) throw new Error('the presence plugin was not set up on this node')
  return node
}

function messageOf (t: Transition): PresenceMessage {
  return t.state === 'offline' && t.lastSeenMs !== undefined
    ? { user_id: t.userId, state: t.state, last_seen: new Date(t.lastSeenMs).toISOString() }
    : { user_id: t.userId, state: t.state }
}

/**
 * The payload stays retained for as long as the state stands. A Buffer made from a string
 * is a slice of a shared 8 KiB pool, and one long-lived slice keeps the whole slab alive
 * with whatever else was cut from it: its own right-sized memory instead.
 */
function retainedPayload (json: string): Buffer {
  const payload = Buffer.allocUnsafeSlow(Buffer.byteLength(json))
  payload.write(json)
  return payload
}

// A connection's device is a property of its client rather than a WeakMap entry: every
// idle session keeps one, and a property costs less (a client belongs to one node).
const DEVICE = Symbol('threadline.presenceDevice')
type WithDevice = Client & { [DEVICE]?: PresenceDevice }
const deviceOf = (client: Client): PresenceDevice | undefined => (client as WithDevice)[DEVICE]

/** A token bucket per connection, for the error events it may cause. */
const errorBudget = new WeakMap<Client, { tokens: number, at: number }>()
function mayAnswer (client: Client): boolean {
  const now = Date.now()
  const b = errorBudget.get(client) ?? { tokens: ERROR_BURST, at: now }
  b.tokens = Math.min(ERROR_BURST, b.tokens + (now - b.at) / 1000)
  b.at = now
  errorBudget.set(client, b)
  if (b.tokens < 1) return false
  b.tokens--
  return true
}

export const presencePlugin = definePlugin<PresenceOptions>({
  name: 'presence',
  dependencies: ['auth', 'acl'],
  config: (env) => ({
    graceMs: env.integer('THREADLINE_PRESENCE_GRACE_MS', 5000, 0, 600_000),
    idleS: env.integer('THREADLINE_PRESENCE_IDLE_S', 300, 1, 86_400),
    heartbeatMs: env.integer('THREADLINE_PRESENCE_HEARTBEAT_MS', 5000, 100, 60_000)
  }),

  async setup (ctx, options) {
    const log = ctx.log.child({ plugin: 'presence' })
    const backendOptions = {
      nodeId: ctx.broker.id,
      graceMs: options.graceMs,
      deadAfterMs: 3 * options.heartbeatMs,
      // longer than a publish may take (broker/bounded-publish.ts: 2 × the Redis timeout + 1 s)
      staleMs: 3 * options.heartbeatMs + 2 * ctx.config.redisTimeoutMs + 1000
    }
    const cluster = ctx.config.redisUrl !== null ? connectRedis(ctx.config.redisUrl, ctx.config.redisTimeoutMs, log, 'presence') : null
    const backend: PresenceBackend = cluster !== null ? new RedisBackend(cluster.redis, backendOptions) : new MemoryBackend(backendOptions)
    const lastSeen = new LastSeenWriter(ctx.store, log)
    let closing = false
    const publish = async (t: Transition): Promise<boolean> => {
      if (t.state === 'offline' && t.lastSeenMs !== undefined) lastSeen.add(t.userId, t.lastSeenMs)
      // the broker is closed: with Redis, another node publishes the change (it stays unconfirmed)
      if (closing) return false
      await ctx.publish(presenceTopic(t.userId), retainedPayload(JSON.stringify(messageOf(t))), { qos: 0, retain: true })
      return true
    }
    const tracker = new PresenceTracker(backend, {
      nodeId: ctx.broker.id, idleMs: options.idleS * 1000, heartbeatMs: options.heartbeatMs, stateSyncMs: STATE_SYNC_MS
    }, publish, log)
    const grants = new PresenceGrants(ctx.store, log, MAX_PRESENCE_SUBSCRIPTIONS)

    const emitter = emitterOf(ctx.broker)
    const onVisibility = (packet: { payload: Buffer | string }, cb: () => void): void => {
      try {
        const { user_id: userId, node } = JSON.parse(packet.payload.toString()) as { user_id: string, node: string }
        if (node !== ctx.broker.id) void grants.recheck({ subjects: new Set([userId]) })
      } catch (err) {
        log.error({ err }, 'bad presence visibility change on the cluster channel')
      }
      cb()
    }
    emitter.on(VISIBILITY_TOPIC, onVisibility)
    const onDisconnect = (client: Client): void => grants.forget(client)
    const onUnsubscribe = (topics: string[], client: Client): void => {
      grants.drop(client, topics.flatMap(t => { const p = parseChatTopic(t); return p?.kind === 'presence' ? [p.userId] : [] }))
    }
    ctx.broker.on('clientDisconnect', onDisconnect)
    ctx.broker.on('unsubscribe', onUnsubscribe)
    const recheckAll = setInterval(() => { void grants.recheck() }, RECHECK_ALL_MS).unref()
    // announcements missed while the cluster channel was down: re-check once it is back
    const running = { stopped: false }
    void (async () => {
      while (!running.stopped) {
        await ctx.membership.whenStale()
        await ctx.membership.whenFresh()
        if (!running.stopped) await grants.recheck()
      }
    })()

    const node: PresenceNode = {
      ctx,
      tracker,
      grants,
      lastSeen,
      async visibilityChanged (userId) {
        await grants.recheck({ subjects: new Set([userId]) })
        await new Promise<void>((resolve) => {
          emitter.emit({ topic: VISIBILITY_TOPIC, payload: Buffer.from(JSON.stringify({ user_id: userId, node: ctx.broker.id })) }, (err?: Error) => {
            // the other nodes' backstop re-check (RECHECK_ALL_MS) catches what they miss
            if (err) log.error({ err, userId }, 'presence visibility change not announced')
            resolve()
          })
        })
      }
    }
    nodes.set(ctx, node)
    const service: PresenceService = {
      isConnected: (userId) => tracker.isConnected(userId),
      connected: (userIds) => tracker.connected(userIds),
      attach: (userId) => tracker.attach(userId),
      view: (viewer, userIds) => lookup(node, viewer, userIds)
    }
    ctx.services.provide(PRESENCE_SERVICE, service)
    ctx.services.provide(PRESENCE_STATS, () => ({ ...tracker.stats(), grants: grants.size }))
    tracker.start()

    return async () => {
      closing = true
      running.stopped = true
      clearInterval(recheckAll)
      ctx.broker.off('clientDisconnect', onDisconnect)
      ctx.broker.off('unsubscribe', onUnsubscribe)
      // a single node is the only one that could end the grace periods of its users
      await tracker.stop(STOP_WAIT_MS, cluster === null)
      await lastSeen.stop()
      cluster?.close()
      nodes.delete(ctx)
    }
  },

  hooks (ctx) {
    const node = nodeOf(ctx)
    const log = ctx.log.child({ plugin: 'presence' })
    // a state said between CONNACK and clientReady (a persistent session restoring from
    // Redis takes a while), applied when the device is attached
    const saidEarly = new WeakMap<Client, PresenceSet['state']>()

    const answer = (client: Client, userId: string, err: ThreadlineError): void => {
      if (!mayAnswer(client)) {
        log.debug({ clientId: client.id, code: err.code }, 'presence: error event skipped (too many)')
        return
      }
      ctx.publish(inboxTopic(userId), JSON.stringify(errorEnvelope(err, {})))
        .catch((e: unknown) => log.error({ err: e }, 'error event not published'))
    }

    return {
      // "heard" is any PUBLISH or SUBSCRIBE of the device (not its PINGREQs: those are the
      // MQTT stack's, not the user's); one timestamp, nothing on the send path waits for it
      authorizePublish (client, packet) {
        const device = deviceOf(client)
        device?.heard()
        if (!packet.topic.startsWith('user/')) return
        const topic = chatTopicOf(packet)
        const identity = identityOf(client)
        if (topic?.kind !== 'presence-set' || identity === null) return
        let state: PresenceSet['state']
        try {
          state = checkSet(parseJsonPayload(packet.payload, ctx.config.maxPayloadBytes)).state
        } catch (err) {
          answer(client, identity.userId, err instanceof ThreadlineError ? err : new ThreadlineError('bad_request', 'presence: not understood'))
          return
        }
        if (device !== undefined) device.setState(state)
        else saidEarly.set(client, state)
      },

      authorizeSubscribe (client, sub) {
        deviceOf(client)?.heard()
        if (!sub.topic.startsWith('presence/')) return sub
        const topic = parseChatTopic(sub.topic)
        const identity = identityOf(client)
        if (topic?.kind !== 'presence' || identity === null) return null
        if (topic.userId === identity.userId) return sub
        return node.grants.authorize(client, identity.userId, topic.userId).then(ok => (ok ? sub : null))
      },

      authorizeForward (client, packet) {
        if (!packet.topic.startsWith('presence/')) return packet
        const subject = packet.topic.slice('presence/'.length)
        if (subject === identityOf(client)?.userId || node.grants.allows(client, subject)) return packet
        return null
      },

      clientReady (client) {
        const identity = identityOf(client)
        if (identity === null) return // anonymous open-topic clients have no presence
        const device = node.tracker.attach(identity.userId)
        const said = saidEarly.get(client)
        if (said !== undefined) device.setState(said)
        ;(client as WithDevice)[DEVICE] = device
      },

      clientGone (client) {
        // every reason alike: a takeover's ready follows (on this node or another), and a
        // reconnect within the grace period is no offline/online pair
        deviceOf(client)?.end()
        ;(client as WithDevice)[DEVICE] = undefined
      },

      membershipChanged (change) {
        if (change.removed.length === 0) return
        // a conversation fewer in common: `contacts` may no longer see each other
        const users = new Set(change.removed)
        return node.grants.recheck({ subjects: users, viewers: users })
      }
    }
  },

  routes: (ctx) => presenceRoutes(nodeOf(ctx))
})
