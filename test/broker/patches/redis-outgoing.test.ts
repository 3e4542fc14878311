// broker/patches/redis-outgoing.ts trims and drains aedes-persistence-redis' queues by its
// key layout. These run the library's own enqueue and replay against a real Redis and
// fail when an upgrade changes that layout.
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import t from 'tap'
import { Redis } from 'ioredis'
import { outgoingKey, RedisQueues } from '../../../broker/patches/redis-outgoing.js'
import { isolatedRedisUrl } from '../../helpers/cluster.js'

const require = createRequire(import.meta.url)
const fromAedes = createRequire(require.resolve('aedes'))

interface Store {
  setup(broker: object): Promise<void>
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: object): Promise<void>
  outgoingStream(client: { id: string }): AsyncIterable<{ brokerCounter: number }>
  destroy(): Promise<void>
}

t.test('trim and drain work on the queues aedes-persistence-redis writes and reads', async (t) => {
  const url = await isolatedRedisUrl(t)
  const db = new Redis(url)
  t.teardown(() => db.disconnect())
  const idleKey = `test:idle:${randomUUID()}`
  t.teardown(() => db.del(idleKey))
  // the fake broker of aedes-persistence's own shared suite: an mqemitter and an id
  const mq = (fromAedes('mqemitter') as () => { emit: unknown, on: unknown, removeListener: unknown })()
  const brokerId = `broker-${randomUUID()}`
  const broker = { id: brokerId, mq, publish: (mq.emit as Function).bind(mq), subscribe: (mq.on as Function).bind(mq), unsubscribe: (mq.removeListener as Function).bind(mq), counter: 0 }
  const store = (require('aedes-persistence-redis') as (opts: object) => Store)({ conn: new Redis(url) })
  await store.setup(broker)
  t.teardown(() => store.destroy())
  const queues = new RedisQueues(db, idleKey)

  const [a, b] = [`a-${randomUUID()}`, `b-${randomUUID()}`]
  const packet = (n: number): object => ({ cmd: 'publish', topic: 'x', payload: Buffer.from(String(n)), qos: 1, retain: false, dup: false, brokerId, brokerCounter: n })
  for (let n = 1; n <= 5; n++) await store.outgoingEnqueueCombi(n === 1 ? [{ clientId: a }, { clientId: b }] : [{ clientId: a }], packet(n))

  t.same(await db.lrange(outgoingKey(a), 0, -1), [1, 2, 3, 4, 5].map(n => `packet:${brokerId}:${n}`), 'a list of packet keys, oldest first')
  t.equal(await db.get(`packet:${brokerId}:1:offlineCount`), '2', 'a shared packet counts its queues')

  t.equal(await queues.trim(a, 2, false), 0, 'not trimmed while the session is not marked idle')
  await db.zadd(idleKey, Date.now(), a)
  t.equal(await queues.trim(a, 2, false), 3, 'an idle session loses its 3 oldest')
  const replayed: number[] = []
  for await (const p of store.outgoingStream({ id: a })) replayed.push(Number(p.brokerCounter))
  t.same(replayed, [4, 5], 'the library replays the newest, in order')
  t.equal(await db.exists(`packet:${brokerId}:2`, `packet:${brokerId}:2:offlineCount`), 0, 'a packet no queue holds is released')
  t.equal(await db.get(`packet:${brokerId}:1:offlineCount`), '1', 'a packet another queue holds stays, counted once less')

  t.equal(await queues.drain(b), 1, 'drain empties a queue')
  t.equal(await db.exists(outgoingKey(b), `packet:${brokerId}:1`, `packet:${brokerId}:1:offlineCount`), 0, 'and releases what it held')
  t.equal(await queues.drain(a), 2)
  t.equal(await queues.length(a), 0)
})
