// The Redis queue store when Redis stops answering (plugins/longpoll/redis-store.ts): an
// append that fails is not retried, so the queues following its topic must expire once
// Redis answers again, before any later event reaches them, or their clients would skip
// an event without knowing. Each store is a node's, on the connections the plugin opens
// (broker/redis-connection.ts); node A reaches Redis through a proxy a test hangs and
// resets, node B directly.
import t, { type Test } from 'tap'
import { connectRedis } from '../../broker/redis-connection.js'
import { createLogger } from '../../broker/logger.js'
import { inboxTopic } from '../../core/topics.js'
import type { QueueLimits } from '../../plugins/longpoll/queue-store.js'
import { MAX_MISSED_TOPICS, RedisQueueStore } from '../../plugins/longpoll/redis-store.js'
import { redisBehindProxy } from '../helpers/cluster.js'
import type { TcpProxy } from '../helpers/tcp-proxy.js'
import { withTimeout } from '../helpers/wait.js'

const LIMITS: QueueLimits = { ttlMs: 60_000, maxEvents: 100, maxBytes: 100_000, perUser: 20, tombstoneMs: 3_600_000 }
const TIMEOUT_MS = 300
const silent = createLogger('silent')
const ev = (n: number): Buffer => Buffer.from(`{"t":"event","n":${n}}`)
let run = 0
const qid = (name: string): string => `${name}-${++run}`.padEnd(43, 'x')

interface Node {
  readonly store: RedisQueueStore
  /** wakes of `queueId` the store heard so far */
  heard(queueId: string): number
  /** resolves once the store heard more than `seen` wakes of `queueId` */
  woken(queueId: string, seen: number): Promise<void>
}

async function node (t: Test, url: string): Promise<Node> {
  const redis = connectRedis(url, TIMEOUT_MS, silent, 'longpoll', { subscriber: true, commands: { enableAutoPipelining: true } })
  t.teardown(() => redis.close())
  const subscriber = redis.subscriber as NonNullable<typeof redis.subscriber>
  const store = new RedisQueueStore(redis.redis, subscriber, LIMITS, silent)
  const heard = new Map<string, number>()
  const waiting = new Set<() => void>()
  store.onWake((id) => {
    heard.set(id, (heard.get(id) ?? 0) + 1)
    for (const check of waiting) check()
  })
  await subscriber.ping() // after the store's SUBSCRIBE: wakes are heard from here on
  return {
    store,
    heard: queueId => heard.get(queueId) ?? 0,
    woken: (queueId, seen) => {
      let check = (): void => {}
      return withTimeout(new Promise<void>((resolve) => {
        check = () => { if ((heard.get(queueId) ?? 0) > seen) resolve() }
        waiting.add(check)
        check()
      }), `a wake of ${queueId}`, undefined, () => waiting.delete(check))
    }
  }
}

async function cluster (t: Test): Promise<{ a: Node, b: Node, proxy: TcpProxy }> {
  const { redisUrl, proxy } = await redisBehindProxy(t)
  return { a: await node(t, proxy.urlFor(redisUrl)), b: await node(t, redisUrl), proxy }
}

/** Appends sent before it have failed once a poll on the same store fails: one connection, one deadline, in order. */
async function failedBefore (t: Test, { store }: Node): Promise<void> {
  await t.rejects(store.poll(qid('probe'), 'nobody', 0, 1, Date.now()), 'a poll while Redis hangs fails')
}

/** Calls `fn` until it stops throwing (Redis reconnecting, as a client would retry). */
async function retried<T> (fn: () => Promise<T>, what: string): Promise<T> {
  return await withTimeout((async () => {
    for (;;) {
      try {
        return await fn()
      } catch {}
    }
  })(), what)
}

const BOB = 'bob'

/** Bob's queue, opened on B; then Redis hangs, an append of A for bob's inbox fails, and the hang ends. */
async function missedOnA (t: Test, ending: 'resume' | 'reset'): Promise<{ a: Node, b: Node, q: string }> {
  const { a, b, proxy } = await cluster(t)
  const q = qid('q')
  await b.store.create(q, { userId: BOB, deviceId: 'browser', topics: [inboxTopic(BOB)] }, Date.now())
  proxy.hang()
  a.store.append(inboxTopic(BOB), ev(1), Date.now())
  await failedBefore(t, a)
  if (ending === 'resume') {
    proxy.resume()
  } else {
    proxy.cut()
    proxy.restore()
  }
  return { a, b, q }
}

// How the hang ends: Redis goes on where it stopped (what the proxy held reaches it late,
// the append that timed out included), or the connections are reset (what was held is
// lost, as when a hung Redis is restarted): the append that failed never ran.
for (const ending of ['resume', 'reset'] as const) {
  t.test(`${ending}: the first poll on the node whose append failed answers expired`, async (t) => {
    const { a, b, q } = await missedOnA(t, ending)
    // whatever Redis ran late, the queue may not answer as if nothing was missed
    t.same(await retried(() => a.store.poll(q, BOB, 0, 10, Date.now()), 'a poll on A after the hang'), { kind: 'expired' })
    t.same(await b.store.poll(q, BOB, 0, 10, Date.now()), { kind: 'expired' }, 'on B too')
  })

  t.test(`${ending}: a later append of the node whose append failed reaches no queue before the expiry does`, async (t) => {
    const { a, b, q } = await missedOnA(t, ending)
    let seen = 0
    a.store.append(inboxTopic(BOB), ev(2), Date.now())
    // B polls each time it hears of the queue, as a held poll would: what it gets may be
    // event 1 (run late) and event 2, never event 2 alone; and in the end the queue expires
    const got: string[] = []
    for (;;) {
      await b.woken(q, seen)
      seen = b.heard(q)
      const polled = await b.store.poll(q, BOB, got.length, 10, Date.now())
      if (polled.kind !== 'events') {
        t.same(polled, { kind: 'expired' }, `expired, after ${got.length} events`)
        break
      }
      got.push(...polled.events.map(e => e.payload.toString()))
      t.same(got, [ev(1), ev(2)].map(String).slice(0, got.length), `events so far: ${got.length}, without a hole`)
    }
  })
}

t.test('more failed topics than remembered: every queue expires once, and a queue opened afterwards is left alone', async (t) => {
  const { a, b, proxy } = await cluster(t)
  const old = qid('old')
  await b.store.create(old, { userId: 'carol', deviceId: 'browser', topics: [inboxTopic('carol')] }, Date.now())
  proxy.hang()
  for (let i = 0; i <= MAX_MISSED_TOPICS; i++) a.store.append(inboxTopic(`u${i}`), ev(i), Date.now())
  await failedBefore(t, a)
  proxy.cut()
  proxy.restore()
  // the sweep tries again what failed: with too many topics to name, every queue
  await retried(() => a.store.sweep(Date.now()), 'a sweep on A after the hang')
  await b.woken(old, 0)
  t.same(await b.store.poll(old, 'carol', 0, 10, Date.now()), { kind: 'expired' }, 'a queue that may have missed an event expired')
  const fresh = qid('fresh')
  await b.store.create(fresh, { userId: 'u1', deviceId: 'browser', topics: [inboxTopic('u1')] }, Date.now())
  t.same(await a.store.poll(fresh, 'u1', 0, 10, Date.now()), { kind: 'events', events: [], lastEventId: 0 },
    'a queue opened after that expiry, on a topic that failed before it, lives')
  a.store.append(inboxTopic('u1'), ev(1), Date.now())
  t.match(await a.store.poll(fresh, 'u1', 0, 10, Date.now()), { kind: 'events', lastEventId: 1 }, 'and gets what follows')
})
