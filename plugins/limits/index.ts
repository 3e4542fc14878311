// Rate limits (docs/operations.md "Limits"): token buckets per user and per client
// address for sends, typing, receipts, presence, CONNECT attempts and REST requests. On
// one node the buckets live in memory and a check is synchronous; with REDIS_URL they are
// shared by the cluster (redis-buckets.ts), falling back to each node's memory while
// Redis does not answer.
//
// Registered first of all plugins: its CONNECT check must come before the token is
// verified and the store asked (mqtt.ts), and a publish it answers never reaches the
// others.
import { definePlugin } from '../../broker/plugin.js'
import { connectRedis, type PluginRedis } from '../../broker/redis-connection.js'
import { SEND_SERVICE } from '../../core/messages/send-service.js'
import { RECEIPTS_SERVICE } from '../../core/receipts/service.js'
import { serviceKey } from '../../core/services.js'
import { TELEMETRY } from '../../core/telemetry.js'
import { TOKENS_SERVICE } from '../../core/tokens.js'
import { DEFAULT_MEMORY_BUCKETS, MemoryBuckets, limitOf, type BucketStore } from './buckets.js'
import { parseLimits, type LimitsOptions } from './config.js'
import { DeferredReceipts } from './deferred-receipts.js'
import { limitsHttp } from './http.js'
import { Limiter } from './limiter.js'
import { authenticate, authorizePublish, type MqttDeps } from './mqtt.js'
import { RedisBuckets } from './redis-buckets.js'

export type { LimitsOptions } from './config.js'

/** Counters for tests and diagnostics: buckets held in this node's memory, receipts kept over the limit. */
export const LIMITS_STATS = serviceKey<() => { buckets: number, deferredReceipts: number }>('limits.stats')

const REDIS_CONNECTION = 'limits'

interface LimitsNode {
  readonly limiter: Limiter
  readonly deferred: DeferredReceipts | null
}

const nodes = new WeakMap<object, LimitsNode>()
function nodeOf (ctx: object): LimitsNode {
  const node = nodes.get(ctx)
  if (node === undefined) throw new Error('the limits plugin was not set up on this node')
  return node
}

export const limitsPlugin = definePlugin<LimitsOptions>({
  name: 'limits',
  config: parseLimits,

  async setup (ctx, options) {
    const log = ctx.log.child({ plugin: 'limits' })
    const memory = new MemoryBuckets(DEFAULT_MEMORY_BUCKETS)
    let redis: PluginRedis | null = null
    let store: BucketStore = memory
    if (ctx.config.redisUrl !== null) {
      // checks of one tick (a burst of sends) go to Redis in one write
      redis = connectRedis(ctx.config.redisUrl, ctx.config.redisTimeoutMs, log, REDIS_CONNECTION, { commands: { enableAutoPipelining: true } })
      store = new RedisBuckets(redis.redis, redis.liveness, REDIS_CONNECTION, memory, log)
    }
    const limiter = new Limiter(store, ctx.services.find(TELEMETRY), log)
    // found when used: the receipts plugin is set up after this one
    const applyReceipt = (userId: string, convId: string, payload: Buffer | string): void => {
      const failed = (err: unknown): void => log.debug({ err: (err as Error).message, user: userId }, 'a receipt kept over the limit was refused')
      try {
        ctx.services.find(RECEIPTS_SERVICE)?.receive(userId, convId, payload)?.catch(failed)
      } catch (err) {
        failed(err)
      }
    }
    const deferred = options.receipts !== null ? new DeferredReceipts(options.receipts, limiter, applyReceipt, log) : null
    nodes.set(ctx, { limiter, deferred })
    ctx.services.provide(LIMITS_STATS, () => ({ buckets: memory.size, deferredReceipts: deferred?.size ?? 0 }))
    return () => {
      deferred?.stop()
      store.close()
      redis?.close()
      nodes.delete(ctx)
    }
  },

  hooks (ctx, options) {
    const { limiter, deferred } = nodeOf(ctx)
    const deps: MqttDeps = {
      ctx,
      limiter,
      deferred,
      limits: { ...options, send: sendLimit(ctx.config) },
      tokens: ctx.services.get(TOKENS_SERVICE),
      sends: ctx.services.get(SEND_SERVICE)
    }
    return { authenticate: authenticate(deps), authorizePublish: authorizePublish(deps) }
  },

  http (ctx, options) {
    return limitsHttp(nodeOf(ctx).limiter, { ...options, send: sendLimit(ctx.config) }, ctx.services.get(SEND_SERVICE))
  }
})

function sendLimit (config: { sendRatePerS: number, sendBurst: number }): ReturnType<typeof limitOf> {
  return limitOf('send', config.sendRatePerS, config.sendBurst)
}
