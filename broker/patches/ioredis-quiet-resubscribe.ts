// Works around ioredis 5.x' resubscribe (built/redis/event_handler.js readyHandler): when
// a subscriber connection is ready again after a reconnect, it calls
// `self.subscribe(channels)` / `self.psubscribe(patterns)` and drops the promises. If that
// connection is lost or closed before Redis answers (a Redis that hangs right after the
// reconnect, then the liveness check or a shutdown closing it), ioredis rejects them, and
// an unhandled rejection ends a Node process. Applied to every subscriber connection
// (broker/broker-state.ts, broker/redis-connection.ts).
// test/broker/patches/ioredis-quiet-resubscribe.test.ts fails if an upgrade changes it.
import type { Redis } from 'ioredis'

const RESUBSCRIBING = ['subscribe', 'psubscribe'] as const

export function quietResubscribe (redis: Redis): Redis {
  // ioredis subscribes again on the next connection whether or not this one failed
  return quietCommands(redis, RESUBSCRIBING)
}

/**
 * Gives the promise of every `names` command on `redis` a listener of its own. The same
 * promise is returned: a caller that awaits it (or passed a callback) still sees the
 * failure; one that dropped it no longer ends the process.
 */
export function quietCommands (redis: Redis, names: readonly string[]): Redis {
  const commands = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  for (const name of names) {
    const command = commands[name]
    if (typeof command !== 'function') throw new Error(`ioredis has no command ${name}`)
    commands[name] = (...args: unknown[]) => {
      const reply = command.apply(redis, args)
      reply.catch(() => {})
      return reply
    }
  }
  return redis
}
