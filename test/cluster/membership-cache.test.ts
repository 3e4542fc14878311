// DESIGN.md §3: "every forward is checked again (a membership cache kept consistent
// across nodes)". A membership change made on node A must reach the cache node B checks
// deliveries and subscriptions against.
//
// How the tests know B has applied a change without sleeping: A announces the change on
// the cluster emitter, then A publishes the fan-out of a later send. Both go out on A's
// one Redis publish connection, and Redis hands a subscriber messages in the order it
// received them, so when that later event reaches a device on B, B has applied the
// change already.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { startCluster } from '../helpers/cluster.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { collect, connectUser } from '../helpers/node.js'

interface Envelope { t: string, conv_id: string, seq: number, sender_id: string, client_msg_id: string }

interface Arrival { topic: string, msg: Envelope }

/** Everything a client receives, in order, from now on. */
function record (client: MqttClient): Arrival[] {
  const seen: Arrival[] = []
  client.on('message', (topic, payload) => { seen.push({ topic, msg: JSON.parse(payload.toString()) as Envelope }) })
  return seen
}

/** SUBACK return codes, refusals (0x80) included: MQTT.js rejects subscribeAsync on any refusal. */
async function subscribeCodes (client: MqttClient, topics: Record<string, { qos: 0 | 1 }>): Promise<number[]> {
  try {
    return (await client.subscribeAsync(topics)).map(g => g.qos)
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted
    if (granted === undefined) throw err
    return granted
  }
}

const send = (client: MqttClient, conv: string, id: string): Promise<unknown> =>
  client.publishAsync(`conv/${conv}/send`, text(id, `text of ${id}`), { qos: 1 })

t.test('a member removed on node A stops receiving the conversation on node B', async (t) => {
  const { nodes: [a, b] } = await startCluster(t)
  if (a === undefined || b === undefined) throw new Error('cluster did not start')
  const alice = userId('alice')
  const bob = userId('bob')
  const group = await createConversation(a, [alice, bob], 'group')
  // a second conversation bob stays in: its events are the markers
  const direct = await createConversation(a, [alice, bob], 'direct')

  const alicePhone = await connectUser(t, a, alice, 'phone')
  const bobPhone = await connectUser(t, b, bob, 'phone')
  const granted = await bobPhone.subscribeAsync({ [`conv/${group}/events`]: { qos: 1 }, [`user/${bob}/inbox`]: { qos: 1 } })
  t.same(granted.map(g => g.qos), [1, 1], 'bob on B may follow the group and his inbox')
  const atBob = record(bobPhone)
  const aliceEvents = await alicePhone.subscribeAsync(`conv/${group}/events`, { qos: 1 })
  t.equal(aliceEvents[0]?.qos, 1)

  const before = collect<Envelope>(bobPhone, 2, (topic, m) => m.client_msg_id === 'g1')
  await send(alicePhone, group, 'g1')
  t.same((await before).length, 2, 'while a member, bob gets the group on both topics')

  // the REST route's work: commit the removal, then announce it
  await a.store.query('DELETE FROM members WHERE conv_id = $1 AND user_id = $2', [group, bob])
  await a.membership.announce({ conv_id: group, added: [], removed: [bob] })

  const marker1 = collect<Envelope>(bobPhone, 1, (topic, m) => m.client_msg_id === 'marker1')
  await send(alicePhone, direct, 'marker1')
  await marker1
  t.pass('B has applied the removal (a later event from A reached bob on B)')

  const aliceSeesG2 = collect<Envelope>(alicePhone, 1, (topic, m) => topic === `conv/${group}/events` && m.client_msg_id === 'g2')
  const marker2 = collect<Envelope>(bobPhone, 1, (topic, m) => m.client_msg_id === 'marker2')
  await send(alicePhone, group, 'g2')
  await send(alicePhone, direct, 'marker2')
  await marker2
  t.equal((await aliceSeesG2)[0]?.seq, 2, 'the group goes on: alice on A gets g2')

  // g2 was published before marker2 on the same path, so had it been forwarded it
  // would have arrived first
  const groupArrivals = atBob.filter(x => x.msg.conv_id === group).map(x => `${x.topic} ${x.msg.client_msg_id}`).sort()
  t.same(groupArrivals, [`conv/${group}/events g1`, `user/${bob}/inbox g1`].sort(),
    'after the removal nothing of the group reaches bob, though his old subscription is still there')
  t.notOk(atBob.some(a => a.msg.client_msg_id === 'g2'), 'g2 never reached bob on B')
  t.ok(atBob.some(a => a.msg.client_msg_id === 'marker2'), 'bob on B is still connected and served')
})

t.test('a user added on node A can follow the conversation on node B', async (t) => {
  const { nodes: [a, b] } = await startCluster(t)
  if (a === undefined || b === undefined) throw new Error('cluster did not start')
  const alice = userId('alice')
  const bob = userId('bob')
  const carol = userId('carol')
  const group = await createConversation(a, [alice, bob], 'group')

  const alicePhone = await connectUser(t, a, alice, 'phone')
  // carol is connected on B before she is added: B has her (empty) membership cached
  const carolPhone = await connectUser(t, b, carol, 'phone')
  const early = await subscribeCodes(carolPhone, { [`user/${carol}/inbox`]: { qos: 1 }, [`conv/${group}/events`]: { qos: 1 } })
  t.same(early, [1, 128], 'not a member yet: the group\'s events are refused (SUBACK 0x80)')
  await carolPhone.unsubscribeAsync(`conv/${group}/events`) // Aedes keeps refused topics of persistent sessions; be explicit
  const atCarol = record(carolPhone)

  await send(alicePhone, group, 'before')

  await a.store.query('INSERT INTO members (conv_id, user_id) VALUES ($1, $2)', [group, carol])
  await a.membership.announce({ conv_id: group, added: [carol], removed: [] })

  // carol is a member in the store now, so the next send reaches her inbox on B; by then
  // B has applied the announcement that went out before it
  const inInbox = collect<Envelope>(carolPhone, 1, (topic, m) => topic === `user/${carol}/inbox` && m.client_msg_id === 'welcome')
  await send(alicePhone, group, 'welcome')
  t.equal((await inInbox)[0]?.seq, 2, 'the first event after joining reaches carol\'s inbox on B')

  const granted = await carolPhone.subscribeAsync(`conv/${group}/events`, { qos: 1 })
  t.equal(granted[0]?.qos, 1, 'B now grants carol the group\'s events')
  const onEvents = collect<Envelope>(carolPhone, 1, (topic, m) => topic === `conv/${group}/events` && m.client_msg_id === 'hello-carol')
  await send(alicePhone, group, 'hello-carol')
  const got = (await onEvents)[0]
  t.equal(got?.seq, 3, 'and delivers them')
  t.equal(got?.sender_id, alice)
  t.notOk(atCarol.some(x => x.msg.client_msg_id === 'before'), 'nothing from before she joined')

  // carol's own send from B is accepted: B's send path reads membership from the store
  const own = collect<Envelope>(alicePhone, 1, (topic, m) => m.client_msg_id === 'hi-from-b')
  await alicePhone.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  await send(carolPhone, group, 'hi-from-b')
  const fromCarol = (await own)[0]
  t.equal(fromCarol?.sender_id, carol, 'carol on B can send into the group, alice on A receives it')
  t.equal(fromCarol?.seq, 4)
})
