// broker/patches/mqemitter-redis-local-first.ts against a real Redis: what upstream
// mqemitter-redis does (the reason for the patch: if an upgrade stops routing a node's own
// packets through Redis, the first test fails and the patch should go), the wire format
// both ends share, and what the patch changes.
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import t from 'tap'
import { Redis } from 'ioredis'
import { createLogger } from '../../broker/logger.js'
import { deliverLocallyFirst, type RedisEmitter } from '../../broker/patches/mqemitter-redis-local-first.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const require = createRequire(import.meta.url)
const MQEmitterRedis = require('mqemitter-redis') as (opts: object) => RedisEmitter & { close(cb: () => void): void }

interface Teardownable { teardown(fn: () => unknown): void }
interface Msg { topic: string, payload: string }

function redisUrl (): string {
  const url = process.env.REDIS_URL
  if (url === undefined) throw new Error('REDIS_URL is not set: run the suite with npm test')
  return url
}

function emitter (t: Teardownable, subUrl = redisUrl()): RedisEmitter & { close(cb: () => void): void } {
  const url = redisUrl()
  const mq = MQEmitterRedis({ subConn: new Redis(subUrl, { enableReadyCheck: false }), pubConn: new Redis(url) })
  t.teardown(() => new Promise<void>(resolve => mq.close(() => resolve())))
  return mq
}

function patched (t: Teardownable, busUp = (): boolean => true, subUrl = redisUrl()): RedisEmitter & { close(cb: () => void): void } {
  const mq = emitter(t, subUrl)
  deliverLocallyFirst(mq, { busUp, onPublishError: () => {}, timeoutMs: 1000, log: createLogger('silent') })
  return mq
}

function within<T> (ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) })
  return Promise.race([work, late]).finally(() => clearTimeout(timer))
}

/** adds `fn` as a listener; resolves once Redis confirmed the SUBSCRIBE (the first listener of a topic waits for it) */
const listen = (mq: RedisEmitter, topic: string, fn: (msg: Msg, cb: () => void) => void = (_msg, cb) => cb()): Promise<void> =>
  new Promise(resolve => mq.on(topic, fn, resolve))
const emit = (mq: RedisEmitter, msg: Msg): Promise<void> =>
  new Promise((resolve, reject) => { mq.emit(msg, (err) => (err ? reject(err) : resolve())) })
/** resolves when `mq`'s subscriber connection has received `n` packets on `topic` from Redis */
const onWire = (mq: RedisEmitter, topic: string, n = 1): Promise<void> => new Promise((resolve) => {
  let count = 0
  // one listener counts them all: two packets can arrive in one read, before a second
  // listener added after the first one fired would exist
  const seen = (channel: Buffer): void => {
    if (channel.toString() !== topic || ++count < n) return
    mq.subConn.off('messageBuffer', seen)
    resolve()
  }
  mq.subConn.on('messageBuffer', seen)
})

t.test('upstream: a node\'s own listener gets its packet only back from Redis', async (t) => {
  const mq = emitter(t)
  const topic = `patch-test/${randomUUID()}`
  let wire = false
  // before mqemitter-redis' own listener, which is what calls the local listeners
  mq.subConn.prependListener('messageBuffer', (channel: Buffer) => { if (channel.toString() === topic) wire = true })
  let resolveGot: (wire: boolean) => void = () => {}
  const got = new Promise<boolean>(resolve => { resolveGot = resolve })
  await listen(mq, topic, (_msg, cb) => { resolveGot(wire); cb() })
  await emit(mq, { topic, payload: 'x' })
  t.equal(await within(5000, 'local delivery', got), true, 'delivered from the subscriber connection, after the round trip')
})

t.test('patched: a node\'s own listener gets its packet at once, and once', async (t) => {
  const mq = patched(t)
  const topic = `patch-test/${randomUUID()}`
  const got: string[] = []
  let wire = false
  mq.subConn.prependListener('messageBuffer', (channel: Buffer) => { if (channel.toString() === topic) wire = true })
  await listen(mq, topic, (msg, cb) => { got.push(`${String(msg.payload)}:${wire ? 'after' : 'before'}`); cb() })
  const back = onWire(mq, topic)
  await emit(mq, { topic, payload: 'x' })
  await within(5000, 'the packet back from Redis', back)
  await new Promise(resolve => setImmediate(resolve))
  t.same(got, ['x:before'], 'delivered before Redis sent it back, and not again after')
})

t.test('patched and unpatched nodes understand each other, each packet once', async (t) => {
  const a = patched(t)
  const b = emitter(t)
  const topic = `patch-test/${randomUUID()}`
  const atA: string[] = []
  const atB: string[] = []
  await listen(a, topic, (msg, cb) => { atA.push(String(msg.payload)); cb() })
  await listen(b, topic, (msg, cb) => { atB.push(String(msg.payload)); cb() })
  const bothAtB = onWire(b, topic, 2)
  await emit(a, { topic, payload: 'from-a' })
  await emit(b, { topic, payload: 'from-b' })
  await within(5000, 'both packets through Redis', bothAtB)
  await within(5000, 'from-b at A', (async () => { while (!atA.includes('from-b')) await new Promise(resolve => setTimeout(resolve, 10)) })())
  await new Promise(resolve => setImmediate(resolve))
  t.same(atA.sort(), ['from-a', 'from-b'], 'the patched node gets its own packet and the other\'s, once each')
  t.same(atB.sort(), ['from-a', 'from-b'], 'the unpatched node reads what the patched one publishes')
})

t.test('patched, with the bus down: local delivery goes on and nothing waits on Redis', async (t) => {
  const mq = patched(t, () => false)
  const topic = `patch-test/${randomUUID()}`
  let publishes = 0
  const publish = mq.pubConn.publish.bind(mq.pubConn)
  mq.pubConn.publish = ((...args: Parameters<typeof publish>) => { publishes++; return publish(...args) }) as typeof publish
  let resolveGot: (payload: string) => void = () => {}
  const got = new Promise<string>(resolve => { resolveGot = resolve })
  await listen(mq, topic, (msg, cb) => { resolveGot(String(msg.payload)); cb() })
  await within(1000, 'the emit callback', emit(mq, { topic, payload: 'local' }))
  t.equal(await within(1000, 'local delivery', got), 'local', 'delivered here')
  t.equal(publishes, 0, 'no PUBLISH is sent while the bus is down')
})

t.test('patched: on() calls back within the timeout when Redis does not answer the SUBSCRIBE', async (t) => {
  const target = new URL(redisUrl())
  const proxy = await startTcpProxy(t, { host: target.hostname, port: Number(target.port) })
  const mq = patched(t, () => true, proxy.urlFor(redisUrl()))
  await within(5000, 'the subscriber connection', new Promise<void>((resolve) => {
    if (mq.subConn.status === 'ready') resolve()
    else mq.subConn.once('ready', () => resolve())
  }))
  proxy.hang()
  const started = Date.now()
  await within(3000, 'on() during a hang', listen(mq, `patch-test/${randomUUID()}`))
  t.ok(Date.now() - started >= 900, 'it waited for Redis first, up to the timeout')
  proxy.resume()
})
