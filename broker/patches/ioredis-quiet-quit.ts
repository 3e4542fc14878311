// Works around mqemitter-redis 7.x' close() (see below); applied in broker/broker-state.ts.
// test/broker/patches/ioredis-quiet-quit.test.ts fails if an upgrade changes either side:
// close() handling QUIT's promise, or ioredis no longer rejecting it.
import type { Redis } from 'ioredis'

/**
 * mqemitter-redis' close() sends QUIT on both connections and drops the promise QUIT
 * returns (it waits for `end` instead). When the socket closes before the reply is
 * read, ioredis rejects that promise with "Connection is closed.", and an unhandled
 * rejection ends a Node process: a graceful shutdown would crash at its last step.
 * With `deadlineMs`, a QUIT still unanswered by then (a Redis that hangs answers nothing
 * and closes nothing) closes the connection itself: `end` would never come otherwise,
 * and Aedes' close(), which waits for it, would hold the node's shutdown for good.
 */
export function quietQuit (redis: Redis, deadlineMs?: number): Redis {
  const quit = redis.quit.bind(redis)
  redis.quit = ((...args: Parameters<Redis['quit']>) => {
    // No socket to say QUIT on: ioredis answers QUIT with disconnect(), which cancels the
    // pending reconnect but, there being no socket to close, never reaches `end`.
    if (redis.status === 'reconnecting') {
      endWhileReconnecting(redis)
      return Promise.resolve('OK')
    }
    const reply = quit(...args)
    reply.catch(() => {}) // `end` follows either way, and that is what close() waits for
    if (deadlineMs !== undefined && redis.status !== 'end') {
      const timer = setTimeout(() => {
        if (redis.status === 'end') return
        if (redis.status === 'reconnecting') return endWhileReconnecting(redis)
        redis.disconnect() // no reconnect after this close
        // disconnect() only half-closes, and waits 2 s for a hung peer before it destroys
        ;(redis as unknown as { stream?: { destroy(): void } }).stream?.destroy()
      }, deadlineMs)
      redis.once('end', () => clearTimeout(timer))
    }
    return reply
  }) as Redis['quit']
  return redis
}

/**
 * ioredis 5's disconnect() while the connection waits to reconnect (status `reconnecting`:
 * Redis went away, or the liveness check dropped a hung connection) clears the reconnect
 * timer and asks a connector with no socket to close, so `end` never comes; mqemitter-redis'
 * close() waits for `end`, and the node's shutdown with it (ioredis handles only `wait` this
 * way, by running its close handler). Ended here as that handler ends a manual close.
 */
function endWhileReconnecting (redis: Redis): void {
  redis.disconnect()
  ;(redis as unknown as { setStatus(status: string): void }).setStatus('end')
}
