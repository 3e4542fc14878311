// broker/patches/ioredis-quiet-resubscribe.ts: after a reconnect, ioredis subscribes its
// channels again and drops the promises. Real Redis behind a proxy: the connection is
// reset, the new one is accepted but held (a Redis that hangs right after the reconnect),
// so the resubscribe is never answered, and then the connection is closed.
import { once } from 'node:events'
import { setImmediate as nextTurn } from 'node:timers/promises'
import t from 'tap'
import { Redis } from 'ioredis'
import { quietResubscribe } from '../../../broker/patches/ioredis-quiet-resubscribe.js'
import { redisBehindProxy } from '../../helpers/cluster.js'
import { unhandledRejections } from '../../helpers/unhandled.js'
import { withTimeout } from '../../helpers/wait.js'

interface Teardownable { teardown(fn: () => unknown): void }

/** A subscriber connection (as broker-state.ts makes them) whose resubscribe after a reconnect goes unanswered; closed at the end. */
async function resubscribeUnanswered (t: Teardownable, patch: (redis: Redis) => Redis): Promise<void> {
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const redis = patch(new Redis(proxy.urlFor(redisUrl), { enableReadyCheck: false, disableClientInfo: true }))
  redis.on('error', () => {})
  await withTimeout(redis.subscribe('threadline-test:resubscribe'), 'the first SUBSCRIBE')
  proxy.hang() // the next connection is accepted and held; the current one is reset now
  const ready = once(redis, 'ready')
  ;(redis as unknown as { stream: { destroy(): void } }).stream.destroy() // the connection drops
  await withTimeout(ready, 'ready again (no ready check: the held connection counts as ready)')
  redis.disconnect() // the liveness check or a shutdown closing it: the resubscribe is rejected
  await withTimeout(once(redis, 'end'), 'the connection to end')
}

t.test('ioredis leaves the resubscribe after a reconnect unhandled when it fails (what the patch is for)', async (t) => {
  const unhandled = unhandledRejections(t)
  await resubscribeUnanswered(t, redis => redis)
  await withTimeout(unhandled.reached(1), 'the unhandled rejection')
  t.same(unhandled.reasons.map(reason => (reason as Error).message), ['Connection is closed.'],
    'the resubscribe\'s rejection is unhandled: without a listener, Node ends the process')
})

t.test('with quietResubscribe, the same reconnect leaves no unhandled rejection', async (t) => {
  const unhandled = unhandledRejections(t)
  await resubscribeUnanswered(t, quietResubscribe)
  await nextTurn()
  t.same(unhandled.reasons, [], 'no unhandled rejection')
})

t.test('a caller of subscribe() still gets its own failure', async (t) => {
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const redis = quietResubscribe(new Redis(proxy.urlFor(redisUrl), { enableReadyCheck: false, disableClientInfo: true }))
  redis.on('error', () => {})
  await withTimeout(redis.subscribe('threadline-test:first'), 'the first SUBSCRIBE')
  proxy.hang()
  const reply = redis.subscribe('threadline-test:second')
  redis.disconnect()
  await t.rejects(withTimeout(reply, 'the SUBSCRIBE to settle'), { message: 'Connection is closed.' })
})
