// A node that loses Redis for a while stays up, and its membership cache does not keep
// what it missed: Redis pub/sub holds nothing for a subscriber that is away, so a
// removal announced during the outage never reaches the node. broker/membership.ts
// treats the cache as stale from the drop (conversation deliveries withheld) until it
// has read every cached user again.
import net from 'node:net'
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { redisBehindProxy } from '../helpers/cluster.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { collect, connectUser, startNode } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { waitFor } from '../helpers/wait.js'

interface Envelope { t: string, conv_id: string, seq: number, sender_id: string, client_msg_id: string }

const send = (client: MqttClient, conv: string, id: string): Promise<unknown> =>
  client.publishAsync(`conv/${conv}/send`, text(id, `text of ${id}`), { qos: 1 })

t.test('a removal announced while node B is cut off from Redis is not missed by B', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const a = await startNode(t, { databaseUrl: db.url, env: { REDIS_URL: redisUrl } })
  // B reaches Redis only through the proxy: its persistence, publisher and subscriber
  const b = await startNode(t, { databaseUrl: db.url, env: { REDIS_URL: proxy.urlFor(redisUrl) } })

  const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
  const group = await createConversation(a, [alice, bob, carol], 'group')
  const direct = await createConversation(a, [alice, bob], 'direct')
  const alicePhone = await connectUser(t, a, alice, 'phone')
  const bobPhone = await connectUser(t, b, bob, 'phone')
  const carolPhone = await connectUser(t, b, carol, 'phone')
  await alicePhone.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  for (const [client, user] of [[bobPhone, bob], [carolPhone, carol]] as const) {
    await client.subscribeAsync({ [`conv/${group}/events`]: { qos: 1 }, [`user/${user}/inbox`]: { qos: 1 } })
  }
  const atBob: Envelope[] = []
  bobPhone.on('message', (_topic, payload) => atBob.push(JSON.parse(payload.toString()) as Envelope))

  const g1 = collect<Envelope>(carolPhone, 1, (topic, m) => topic === `conv/${group}/events` && m.client_msg_id === 'g1')
  await send(alicePhone, group, 'g1')
  await g1
  t.ok(atBob.some(m => m.client_msg_id === 'g1'), 'before the outage both members on B follow the group')

  // — B loses Redis —
  const stale = b.membership.whenStale()
  proxy.cut()
  await stale
  t.pass('B notices the lost cluster channel and distrusts its membership cache')

  // the removal happens on A meanwhile; its announcement cannot reach B
  await a.store.query('DELETE FROM members WHERE conv_id = $1 AND user_id = $2', [group, bob])
  await a.membership.announce({ conv_id: group, added: [], removed: [bob] })

  // — Redis is back —
  const fresh = b.membership.whenFresh()
  proxy.restore()
  await fresh
  t.pass('B reconnects and reads its cached memberships again')

  const carolG2 = collect<Envelope>(carolPhone, 1, (topic, m) => topic === `conv/${group}/events` && m.client_msg_id === 'g2')
  const marker = collect<Envelope>(bobPhone, 1, (topic, m) => m.client_msg_id === 'marker')
  await send(alicePhone, group, 'g2')
  await send(alicePhone, direct, 'marker')
  t.equal((await carolG2)[0]?.seq, 2, 'carol, still a member, follows the group on B again')
  await marker
  t.notOk(atBob.some(m => m.client_msg_id === 'g2'), 'bob, removed during the outage, gets nothing more of the group on B')

  // B's own publishing works again too
  const fromB = collect<Envelope>(alicePhone, 1, (topic, m) => m.client_msg_id === 'from-b')
  await send(carolPhone, group, 'from-b')
  t.equal((await fromB)[0]?.sender_id, carol, 'a send on B reaches A after the outage')

  // Closed, the nodes leave no connection to Redis behind, direct or through the proxy:
  // a reconnect that outlived close() would keep this process alive past its tests.
  await b.close()
  await a.close()
  await proxy.close()
  const redisPorts = new Set([Number(new URL(redisUrl).port), proxy.port])
  const lingering = (): string[] => (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles()
    .filter((h): h is net.Socket => h instanceof net.Socket && redisPorts.has(h.remotePort ?? -1) && !h.destroyed)
    .map(s => `${s.localPort ?? '?'}→${s.remotePort ?? '?'}`)
  await waitFor(() => lingering().length === 0, 'the closed nodes\' Redis connections to go', 5000)
    .catch((err: Error) => { throw new Error(`${err.message}; still open: ${lingering().join(', ')}`) })
  t.pass('no Redis connection outlives the nodes')
})
