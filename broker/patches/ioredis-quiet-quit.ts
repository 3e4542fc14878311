// Works around mqemitter-redis 7.x' close() (see below); applied in broker/broker-state.ts.
// test/broker/patches/ioredis-quiet-quit.test.ts fails if an upgrade changes either side:
// close() handling QUIT's promise, or ioredis no longer rejecting it.
import type { Redis } from 'ioredis'

/**
 * mqemitter-redis' close() sends QUIT on both connections and drops the promise QUIT
 * returns (it waits for `end` instead). When the socket closes before the reply is
 * read, ioredis rejects that promise with "Connection is closed.", and an unhandled
 * rejection ends a Node process: a graceful shutdown would crash at its last step.
 */
export function quietQuit (redis: Redis): Redis {
  const quit = redis.quit.bind(redis)
  redis.quit = ((...args: Parameters<Redis['quit']>) => {
    const reply = quit(...args)
    reply.catch(() => {}) // `end` follows either way, and that is what close() waits for
    return reply
  }) as Redis['quit']
  return redis
}
