// Membership changes reach every node even when their announcement does not: Redis
// pub/sub delivers at most once, so the announcement is only the fast path; the change
// log written in the removal's own transaction is what every node reads (each second),
// and what guards stored data (history over REST, SUBSCRIBE) asks the store itself.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { emitterOf, MEMBERSHIP_TOPIC } from '../../broker/membership.js'
import { startCluster } from '../helpers/cluster.js'
import { userId } from '../helpers/fixtures.js'
import { untilForward } from '../helpers/membership.js'
import { connectUser, token } from '../helpers/node.js'

/** A REST call as `user`, the way an app makes it. */
async function rest (node: Threadline, user: string, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await node.app.inject({ method, url, headers: { authorization: `Bearer ${token(node, user)}` }, ...(payload ? { payload } : {}) })
  return { status: res.statusCode, body: res.body === '' ? {} : res.json() as Record<string, unknown> }
}

/** The SUBACK return code of one topic, a refusal (0x80) included: MQTT.js rejects subscribeAsync on any refusal. */
async function subackCode (client: MqttClient, topic: string): Promise<number | undefined> {
  try {
    return (await client.subscribeAsync(topic, { qos: 1 }))[0]?.qos
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted
    if (granted === undefined) throw err
    return granted[0]
  }
}

/** Makes every membership announcement of `node` vanish on its way to Redis, as a lost pub/sub message does. */
function loseAnnouncements (node: Threadline): { lost: number } {
  const emitter = emitterOf(node.broker)
  const emit = emitter.emit.bind(emitter)
  const counter = { lost: 0 }
  emitter.emit = (packet, cb) => {
    if (packet.topic !== MEMBERSHIP_TOPIC) return emit(packet, cb)
    counter.lost++
    cb() // the publisher saw nothing wrong: Redis pub/sub keeps no message for anyone
  }
  return counter
}

t.test('a removal whose announcement is lost still takes effect on the other node', async (t) => {
  const { nodes: [a, b] } = await startCluster(t)
  if (a === undefined || b === undefined) throw new Error('cluster did not start')
  const [alice, bob] = [userId('alice'), userId('bob')]
  const created = await rest(a, alice, 'POST', '/v1/conversations', { type: 'group', title: 'plans', members: [bob] })
  t.equal(created.status, 201)
  const group = created.body.id as string
  const direct = (await rest(a, alice, 'POST', '/v1/conversations', { type: 'direct', members: [bob] })).body.id as string

  const alicePhone = await connectUser(t, a, alice, 'phone')
  const bobPhone = await connectUser(t, b, bob, 'phone')
  const granted = await bobPhone.subscribeAsync({ [`conv/${group}/events`]: { qos: 1 }, [`user/${bob}/inbox`]: { qos: 1 } })
  t.same(granted.map(g => g.qos), [1, 1], 'bob on B follows the group and his inbox')
  t.equal((await rest(b, bob, 'GET', `/v1/conversations/${group}/events`)).status, 200, 'bob reads the history on B while a member')

  const lost = loseAnnouncements(a)
  const removed = await rest(a, alice, 'DELETE', `/v1/conversations/${group}/members/${bob}`)
  t.equal(removed.status, 204, 'alice removes bob on A')
  t.equal(lost.lost, 1, 'the announcement of the removal never reached Redis')

  const history = await rest(b, bob, 'GET', `/v1/conversations/${group}/events`)
  t.equal(history.status, 403, 'at once, B refuses bob the history')
  t.equal(history.body.code, 'not_member')

  const afterMs = await untilForward({ sender: alicePhone, watcher: bobPhone, watcherId: bob, group, direct, timeoutMs: 10_000 }, 'withheld')
  t.ok(afterMs < 5000, `bob's old subscription on B stopped receiving the group ${afterMs} ms after the removal`)

  t.equal(await subackCode(bobPhone, `conv/${group}/events`), 128, 'a new SUBSCRIBE to the group is refused on B (SUBACK 0x80)')
})

t.test('an addition whose announcement is lost still lets the new member follow on the other node', async (t) => {
  const { nodes: [a, b] } = await startCluster(t)
  if (a === undefined || b === undefined) throw new Error('cluster did not start')
  const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
  const group = (await rest(a, alice, 'POST', '/v1/conversations', { type: 'group', title: 'plans', members: [bob] })).body.id as string
  const direct = (await rest(a, alice, 'POST', '/v1/conversations', { type: 'direct', members: [carol] })).body.id as string
  // carol is connected on B before she is added: B has her (empty) memberships cached
  const carolPhone = await connectUser(t, b, carol, 'phone')
  const alicePhone = await connectUser(t, a, alice, 'phone')

  const lost = loseAnnouncements(a)
  const added = await rest(a, alice, 'POST', `/v1/conversations/${group}/members`, { user_ids: [carol] })
  t.equal(added.status, 200, 'alice adds carol on A', { body: added.body })
  t.equal(lost.lost, 1, 'the announcement of the addition never reached Redis')
  t.equal((await rest(b, carol, 'GET', `/v1/conversations/${group}/events`)).status, 200, 'at once, B lets carol read the history')
  t.equal(await subackCode(carolPhone, `conv/${group}/events`), 1, 'and grants her SUBSCRIBE to the group\'s events')

  await carolPhone.subscribeAsync(`user/${carol}/inbox`, { qos: 1 })
  const afterMs = await untilForward({ sender: alicePhone, watcher: carolPhone, watcherId: carol, group, direct, timeoutMs: 10_000 }, 'delivered')
  t.ok(afterMs < 5000, `carol on B receives the group's events ${afterMs} ms after she was added`)
})
