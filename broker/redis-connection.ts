// The Redis connections a plugin opens for itself, on the node's conventions
// (broker-state.ts): every command has a deadline (a hung Redis answers nothing and
// closes nothing), none is resent after a reconnect (its caller was told it failed), and
// a liveness check makes a hung connection reconnect.
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from './logger.js'
import { RedisLiveness } from './redis-liveness.js'
import { quietQuit } from './patches/ioredis-quiet-quit.js'
import { quietResubscribe } from './patches/ioredis-quiet-resubscribe.js'

export interface PluginRedis {
  readonly redis: Redis
  /** null unless asked for: a subscriber connection (no command deadline; PINGed instead) */
  readonly subscriber: Redis | null
  readonly liveness: RedisLiveness
  close(): void
}

export function connectRedis (url: string, timeoutMs: number, log: Logger, name: string,
  opts: { subscriber?: boolean, commands?: RedisOptions } = {}): PluginRedis {
  const redis = new Redis(url, { commandTimeout: timeoutMs, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 3, ...opts.commands })
  redis.on('error', (err: Error) => log.warn({ err: err.message }, `Redis connection error (${name})`))
  // see broker-state.ts SUBSCRIBER_OPTIONS: ioredis' ready check races a (P)SUBSCRIBE sent at connect
  const subscriber = opts.subscriber === true ? quietResubscribe(quietQuit(new Redis(url, { enableReadyCheck: false, disableClientInfo: true }))) : null
  subscriber?.on('error', (err: Error) => log.warn({ err: err.message }, `Redis connection error (${name} subscriber)`))
  const liveness = new RedisLiveness([
    { name, redis },
    ...(subscriber !== null ? [{ name: `${name} subscriber`, redis: subscriber }] : [])
  ], timeoutMs, log)
  return {
    redis,
    subscriber,
    liveness,
    close () {
      liveness.stop()
      redis.disconnect()
      subscriber?.disconnect()
    }
  }
}
