// Works around mqemitter-redis 7.x: its emit() is only a Redis PUBLISH, and this node's
// own listeners get the packet from the subscriber connection once it has come back
// from Redis (deduplicated by packet id in an LRU cache). So with Redis hung nothing
// reaches even a subscriber on the same node, and every Aedes publish waits on Redis.
//
// Patched: a packet goes to this node's listeners at once (as the in-memory mqemitter
// does), and to Redis for the other nodes only while the publisher connection is up; a
// packet of this node's coming back from Redis (also one that Redis processes late, after
// a hang) is recognised by its id and not delivered again. The emit's callback settles
// when the PUBLISH does, or at once when the bus is down: the bus is at most once (other
// nodes catch up from history by seq), and a failed PUBLISH is reported to `onPublishError`
// rather than to Aedes, which would fail a publish that was delivered here.
//
// on()/removeListener() register with this node's listeners at once, but call back only
// when Redis has answered the (P)SUBSCRIBE — never, while Redis hangs: an Aedes SUBSCRIBE
// would wait for it. The subscriber connection has no commandTimeout (ioredis'
// resubscribe after a reconnect would reject unheard, ending the process), so their
// callbacks are called after `timeoutMs` at the latest; ioredis keeps the command and
// sends it again on the next connection.
// test/cluster/emitter-patch.test.ts fails if an upgrade changes the behaviour or the
// `{ id, msg }` msgpack wire format this relies on.
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'

const require = createRequire(import.meta.url)
// the msgpack that mqemitter-redis itself encodes with, so both ends agree on the format
const msgpack = createRequire(require.resolve('mqemitter-redis'))('msgpack-lite') as {
  encode(value: unknown): Buffer
  decode(buffer: Buffer): unknown
}

interface Packet { topic: string }
type Done = (err?: Error) => void

/** the internals of an MQEmitterRedis instance this patch replaces or uses */
export interface RedisEmitter {
  subConn: Redis
  pubConn: Redis
  closed: boolean
  _cache: { get(id: string): unknown, set(id: string, value: boolean): unknown }
  _ignoredTopicsSet: Set<string>
  /** MQEmitter's own emit: this node's listeners only */
  _emit(msg: Packet, cb?: Done): void
  emit(msg: Packet, done?: Done): unknown
  on(topic: string, notify: unknown, done?: () => void): unknown
  removeListener(topic: string, notify: unknown, done?: () => void): unknown
}

export interface LocalFirstOptions {
  /** whether a PUBLISH is worth trying now (false while the publisher connection is down or hung) */
  busUp(): boolean
  onPublishError(err: Error): void
  /** longest wait for Redis to confirm a (un)subscription before on()/removeListener() call back */
  timeoutMs: number
  log: Logger
}

export function deliverLocallyFirst (emitter: RedisEmitter, opts: LocalFirstOptions): void {
  // ids of this node's packets start with this; hyperid ids (other, unpatched emitters) never do
  const origin = `${randomUUID()}:`
  let counter = 0

  const sub = emitter.subConn
  for (const event of ['messageBuffer', 'pmessageBuffer'] as const) {
    for (const upstream of sub.listeners(event)) sub.off(event, upstream as (...args: unknown[]) => void)
  }
  const receive = (channel: Buffer, message: Buffer): void => {
    if (emitter._ignoredTopicsSet.has(channel.toString('utf8'))) return
    let packet: { id: string, msg: Packet }
    try {
      packet = msgpack.decode(message) as { id: string, msg: Packet }
    } catch (err) {
      opts.log.error({ err, channel: channel.toString('utf8') }, 'undecodable packet on the cluster bus')
      return
    }
    if (typeof packet.id !== 'string' || packet.id.startsWith(origin)) return // ours: delivered when emitted
    if (emitter._cache.get(packet.id) === undefined) emitter._emit(packet.msg)
    emitter._cache.set(packet.id, true)
  }
  sub.on('messageBuffer', (channel: Buffer, message: Buffer) => receive(channel, message))
  sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => receive(channel, message))

  const within = (done: (() => void) | undefined): (() => void) | undefined => {
    if (done === undefined) return undefined
    let called = false
    const once = (): void => {
      if (called) return
      called = true
      clearTimeout(timer)
      done()
    }
    const timer = setTimeout(once, opts.timeoutMs)
    return once
  }
  const on = emitter.on.bind(emitter)
  const removeListener = emitter.removeListener.bind(emitter)
  emitter.on = (topic, notify, done) => on(topic, notify, within(done))
  emitter.removeListener = (topic, notify, done) => removeListener(topic, notify, within(done))

  emitter.emit = (msg: Packet, done: Done = () => {}) => {
    if (emitter.closed) return done(new Error('mqemitter-redis is closed'))
    emitter._emit(msg)
    if (!opts.busUp()) return done()
    emitter.pubConn.publish(msg.topic, msgpack.encode({ id: origin + String(++counter), msg })).then(
      () => done(),
      (err: Error) => { opts.onPublishError(err); done() })
  }
}
