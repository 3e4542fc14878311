// broker/patches/ioredis-quiet-quit.ts: mqemitter-redis 7.x' close() sends QUIT and drops the
// promise, and ioredis rejects that promise when the socket closes before the reply. Real
// Redis behind a proxy that holds the QUIT (hang) and then resets the connection (cut):
// a QUIT whose reply never comes back, as at a shutdown racing the server's close.
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { setImmediate as nextTurn } from 'node:timers/promises'
import t from 'tap'
import { Redis } from 'ioredis'
import { quietQuit } from '../../../broker/patches/ioredis-quiet-quit.js'
import { redisBehindProxy } from '../../helpers/cluster.js'
import type { TcpProxy } from '../../helpers/tcp-proxy.js'
import { unhandledRejections } from '../../helpers/unhandled.js'
import { waitFor, withTimeout } from '../../helpers/wait.js'

interface Teardownable { teardown(fn: () => unknown): void }
interface Emitter {
  subConn: Redis
  pubConn: Redis
  state: NodeJS.EventEmitter
  close(cb: () => void): void
}

const require = createRequire(import.meta.url)
const MQEmitterRedis = require('mqemitter-redis') as (opts: object) => Emitter

/** A connection through the proxy, ready; the proxy is still forwarding. */
async function connection (redisUrl: string, proxy: TcpProxy): Promise<Redis> {
  const redis = new Redis(proxy.urlFor(redisUrl), { enableReadyCheck: false })
  redis.on('error', () => {}) // the reset, once cut: what the tests look at is the QUIT's reply
  if (redis.status !== 'ready') await withTimeout(once(redis, 'ready'), 'the connection to be ready')
  return redis
}

/**
 * mqemitter-redis over two connections through a proxy; its close() is called while the
 * proxy holds every byte, and then the proxy resets both connections. Resolves when
 * close() has called back; `quitArgs` has the arguments of each connection's quit().
 */
async function closeWithQuitUnanswered (t: Teardownable, patch: (redis: Redis) => Redis): Promise<{ quitArgs: unknown[][] }> {
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const quitArgs: unknown[][] = []
  const watched = async (): Promise<Redis> => {
    const redis = await connection(redisUrl, proxy)
    const quit = redis.quit.bind(redis)
    redis.quit = ((...args: Parameters<Redis['quit']>) => {
      quitArgs.push(args)
      return quit(...args)
    }) as Redis['quit']
    return patch(redis)
  }
  const mq = MQEmitterRedis({ subConn: await watched(), pubConn: await watched() })
  mq.state.on('error', () => {})
  proxy.hang()
  const closed = new Promise<void>(resolve => mq.close(resolve))
  proxy.cut()
  await withTimeout(closed, 'mqemitter-redis to close')
  return { quitArgs }
}

t.test('ioredis rejects a QUIT in flight with "Connection is closed." when the socket closes first, and still ends', async (t) => {
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const redis = await connection(redisUrl, proxy)
  const ended = once(redis, 'end')
  proxy.hang()
  const reply = redis.quit()
  proxy.cut()
  await t.rejects(withTimeout(reply, 'the QUIT to settle'), { message: 'Connection is closed.' })
  await withTimeout(ended, 'the connection to end')
  t.equal(redis.status, 'end', 'the `end` that mqemitter-redis\' close() waits for')
})

t.test('mqemitter-redis close() calls quit() on both connections and leaves their rejections unhandled (what the patch is for)', async (t) => {
  const unhandled = unhandledRejections(t)
  const { quitArgs } = await closeWithQuitUnanswered(t, redis => redis)
  t.same(quitArgs, [[], []], 'quit() once per connection, with no callback')
  await withTimeout(unhandled.reached(2), 'the two unhandled rejections')
  t.same(unhandled.reasons.map(reason => (reason as Error).message), ['Connection is closed.', 'Connection is closed.'],
    'each QUIT\'s rejection is unhandled: without a listener, Node ends the process')
})

t.test('with quietQuit on both connections, the same close() leaves no unhandled rejection', async (t) => {
  const unhandled = unhandledRejections(t)
  const { quitArgs } = await closeWithQuitUnanswered(t, quietQuit)
  t.equal(quitArgs.length, 2, 'both connections were sent QUIT')
  // Node reports a rejection left unhandled once the microtasks of its turn have run
  await nextTurn()
  t.same(unhandled.reasons, [], 'no unhandled rejection')
})

t.test('with a deadline, a QUIT that Redis never answers (a hang) still ends the connection, so close() ends', async (t) => {
  const unhandled = unhandledRejections(t)
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const mq = MQEmitterRedis({ subConn: quietQuit(await connection(redisUrl, proxy), 200), pubConn: quietQuit(await connection(redisUrl, proxy), 200) })
  mq.state.on('error', () => {})
  proxy.hang() // nothing answers, nothing closes
  const started = Date.now()
  await withTimeout(new Promise<void>(resolve => mq.close(resolve)), 'mqemitter-redis to close', 5000)
  t.ok(Date.now() - started < 2000, `close() ends soon after the deadline (${Date.now() - started} ms)`)
  await nextTurn()
  t.same(unhandled.reasons, [], 'no unhandled rejection')
})

/** A connection whose Redis went away: ioredis waits to reconnect (status `reconnecting`). */
async function reconnecting (t: Teardownable): Promise<Redis> {
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const redis = new Redis(proxy.urlFor(redisUrl), { enableReadyCheck: false, retryStrategy: () => 60_000 })
  redis.on('error', () => {})
  if (redis.status !== 'ready') await withTimeout(once(redis, 'ready'), 'the connection to be ready')
  proxy.cut()
  // not events.once: it rejects on the `error` (the reset) that comes first
  await waitFor(() => redis.status === 'reconnecting', 'the connection to wait to reconnect')
  return redis
}

t.test('ioredis: QUIT while waiting to reconnect never ends the connection (what the patch is for)', async (t) => {
  const redis = await reconnecting(t)
  t.teardown(() => { (redis as unknown as { setStatus(s: string): void }).setStatus('end') })
  let ended = false
  redis.once('end', () => { ended = true })
  await redis.quit()
  await nextTurn()
  await nextTurn()
  t.equal(redis.status, 'reconnecting', 'still waiting, with its reconnect cancelled')
  t.notOk(ended, 'and no `end`')
})

t.test('with quietQuit, close() of mqemitter-redis ends although a connection waits to reconnect', async (t) => {
  const unhandled = unhandledRejections(t)
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const mq = MQEmitterRedis({ subConn: quietQuit(await connection(redisUrl, proxy), 200), pubConn: quietQuit(await reconnecting(t), 200) })
  mq.state.on('error', () => {})
  await withTimeout(new Promise<void>(resolve => mq.close(resolve)), 'mqemitter-redis to close', 5000)
  t.equal(mq.pubConn.status, 'end')
  await nextTurn()
  t.same(unhandled.reasons, [], 'no unhandled rejection')
})
