// conv/<c>/typing end to end: real nodes, real MQTT.js clients, PostgreSQL and PGlite.
// The broker stamps the sender, forwards to members only, throttles, stores nothing,
// and answers bad input with an error event while the connection stays up.
import type { MqttClient } from 'mqtt'
import t, { type Test } from 'tap'
import type { Threadline } from '../../broker/server.js'
import { closed, removeMember, sendText, suback } from '../helpers/access.js'
import { dbFingerprint } from '../helpers/db-fingerprint.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { collect, connectUser, startNode, type StoreKind } from '../helpers/node.js'
import { startCluster } from '../helpers/cluster.js'

const typingOf = (conv: string): string => `conv/${conv}/typing`

interface Signal { user_id: string, typing: boolean }
interface Received extends Signal { topic: string }

/** Everything `client` receives on typing topics, in order. */
function typingLog (client: MqttClient): Received[] {
  const got: Received[] = []
  client.on('message', (topic, payload) => {
    if (topic.endsWith('/typing')) got.push({ topic, ...(JSON.parse(payload.toString()) as Signal) })
  })
  return got
}

/** The next `n` typing signals at `client`, with their topics. */
const nextSignals = (client: MqttClient, n: number): Promise<Array<Signal & { topic?: string }>> =>
  collect<Signal>(client, n, (topic) => topic.endsWith('/typing'))

interface Room {
  node: Threadline
  alice: string
  bob: string
  conv: string
  /** a second conversation of both, for barriers */
  other: string
  a: MqttClient
  /** bob's phone, subscribed to the typing of `conv` and the events of `other` */
  b: MqttClient
}

async function room (t: Test, store: StoreKind = 'pg', env: Record<string, string> = {}): Promise<Room> {
  const node = await startNode(t, { store, env })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob], 'group')
  const other = await createConversation(node, [alice, bob], 'group')
  const a = await connectUser(t, node, alice, 'phone')
  const b = await connectUser(t, node, bob, 'phone')
  await b.subscribeAsync([typingOf(conv), `conv/${other}/events`], { qos: 1 })
  return { node, alice, bob, conv, other, a, b }
}

let barriers = 0
/**
 * Alice sends a message in the other conversation. Her packets enter the hooks in the
 * order she sent them and a typing signal is published from the hook itself, so once bob
 * has the event, every signal her earlier packets could cause has reached him.
 */
async function barrier (r: Room): Promise<void> {
  const arrived = collect(r.b, 1, (topic) => topic === `conv/${r.other}/events`)
  await sendText(r.a, r.other, `barrier-${++barriers}`)
  await arrived
}

for (const store of ['pg', 'pglite'] as const) {
  t.test(`${store}: members receive the signal stamped with the sender's id; a forged user_id is ignored; nothing is stored`, async (t) => {
    const r = await room(t, store)
    const a2 = await connectUser(t, r.node, r.alice, 'laptop')
    await a2.subscribeAsync(typingOf(r.conv), { qos: 0 })
    const before = await dbFingerprint(r.node.store)

    const atBob = nextSignals(r.b, 1)
    const atLaptop = nextSignals(a2, 1)
    await r.a.publishAsync(typingOf(r.conv), JSON.stringify({ typing: true, user_id: 'mallory' }))
    t.same(await atBob, [{ user_id: r.alice, typing: true }], 'exactly {user_id, typing}: the broker names the sender')
    t.same(await atLaptop, [{ user_id: r.alice, typing: true }], 'the sender\'s other devices see it too')
    const stop = nextSignals(r.b, 1)
    await r.a.publishAsync(typingOf(r.conv), '{"typing":false}')
    t.same(await stop, [{ user_id: r.alice, typing: false }])

    t.same(await dbFingerprint(r.node.store), before, 'no row of any table was written')
  })
}

t.test('a non-member is refused not_member on their inbox, reaches nobody, and stays connected; a stranger cannot subscribe', async (t) => {
  const r = await room(t)
  const log = typingLog(r.b)
  const carol = userId('carol')
  const c = await connectUser(t, r.node, carol, 'phone')
  await c.subscribeAsync(`user/${carol}/inbox`, { qos: 1 })
  t.same(await suback(c, typingOf(r.conv)), [128], 'typing subscriptions are for members only')

  const answer = collect(c, 1, (topic) => topic === `user/${carol}/inbox`)
  await c.publishAsync(typingOf(r.conv), '{"typing":true}')
  t.match(await answer, [{ t: 'error', conv_id: r.conv, code: 'not_member' }])
  await barrier(r)
  t.same(log, [], 'bob received nothing from carol')
  t.ok(c.connected, 'the connection stays up')

  // a member who is removed stops hearing, and is refused when they speak
  await removeMember(r.node, r.conv, r.bob)
  const mark = log.length
  await r.a.publishAsync(typingOf(r.conv), '{"typing":true}')
  await barrier(r)
  t.same(log.slice(mark), [], 'bob no longer receives the conversation\'s typing')
  const bobInbox = collect(r.b, 1, (topic) => topic === `user/${r.bob}/inbox`)
  await r.b.subscribeAsync(`user/${r.bob}/inbox`, { qos: 1 })
  await r.b.publishAsync(typingOf(r.conv), '{"typing":true}')
  t.match(await bobInbox, [{ t: 'error', code: 'not_member' }])
})

t.test('bad payloads are answered bad_request or too_large; the connection stays up and nothing is forwarded', async (t) => {
  const r = await room(t)
  const log = typingLog(r.b)
  await r.a.subscribeAsync(`user/${r.alice}/inbox`, { qos: 1 })
  const cases: Array<[Buffer | string, string, RegExp]> = [
    ['nope', 'bad_request', /not valid JSON/],
    ['{}', 'bad_request', /typing signal: must have required properties typing/],
    ['{"typing":"yes"}', 'bad_request', /typing signal: typing must be boolean/],
    ['{"typing":1}', 'bad_request', /must be boolean/],
    ['true', 'bad_request', /typing signal: must be object/],
    ['[{"typing":true}]', 'bad_request', /must be object/],
    ['', 'bad_request', /not valid JSON/],
    [Buffer.from([0x7b, 0xff, 0x7d]), 'bad_request', /not valid UTF-8/],
    [JSON.stringify({ typing: true, pad: 'x'.repeat(2000) }), 'too_large', /limit is 1024/]
  ]
  const answers = collect(r.a, cases.length, (topic) => topic === `user/${r.alice}/inbox`)
  for (const [payload] of cases) await r.a.publishAsync(typingOf(r.conv), payload, { qos: 1 })
  const got = await answers
  cases.forEach(([payload, code, message], i) => {
    t.match(got[i], { t: 'error', conv_id: r.conv, code, message }, `${String(payload).slice(0, 30)} → ${code}`)
  })
  await barrier(r)
  t.same(log, [], 'nothing reached bob')
  t.ok(r.a.connected, 'still connected')
})

t.test('QoS 1 and 2 are accepted and acknowledged; the signal goes out at QoS 0; a retain flag has no effect', async (t) => {
  const r = await room(t, 'pg', { THREADLINE_TYPING_INTERVAL_MS: '0' })
  const qos: number[] = []
  r.b.on('message', (topic, _payload, packet) => { if (topic === typingOf(r.conv)) qos.push(packet.qos) })
  const got = nextSignals(r.b, 3)
  await r.a.publishAsync(typingOf(r.conv), '{"typing":true}', { qos: 1 })
  await r.a.publishAsync(typingOf(r.conv), '{"typing":false}', { qos: 2 })
  await r.a.publishAsync(typingOf(r.conv), '{"typing":true}', { qos: 0, retain: true })
  t.same((await got).map(s => s.typing), [true, false, true], 'PUBACK and PUBCOMP came, and each signal was forwarded')
  t.same(qos, [0, 0, 0], 'delivered at QoS 0 although bob subscribed at QoS 1')

  const late = await connectUser(t, r.node, r.bob, 'tablet')
  const lateLog = typingLog(late)
  await late.subscribeAsync(typingOf(r.conv), { qos: 0 })
  const lateGot = nextSignals(late, 1)
  await r.a.publishAsync(typingOf(r.conv), '{"typing":false}')
  t.same(await lateGot, [{ user_id: r.alice, typing: false }])
  t.same(lateLog.map(s => s.typing), [false], 'nothing retained: a new subscriber gets only what comes after')
})

t.test('throttle: one start per interval, a stop always passes, a repeated stop is dropped; per user and conversation', async (t) => {
  const r = await room(t, 'pg', { THREADLINE_TYPING_INTERVAL_MS: '60000' })
  const log = typingLog(r.b)
  const send = (typing: boolean): Promise<unknown> => r.a.publishAsync(typingOf(r.conv), JSON.stringify({ typing }))
  for (const typing of [true, true, true, false, false, true, false]) await send(typing)
  await barrier(r)
  t.same(log.map(s => s.typing), [true, false],
    'a burst of starts forwards one; the stop passes; the second stop and the start within the interval are dropped, and so is the stop after that dropped start')

  // another member is throttled on their own
  await r.a.subscribeAsync(typingOf(r.conv), { qos: 0 })
  const fromBob = nextSignals(r.a, 1)
  await r.b.publishAsync(typingOf(r.conv), '{"typing":true}')
  t.same(await fromBob, [{ user_id: r.bob, typing: true }], 'bob\'s start passes while alice is throttled')
})

t.test('throttle off (THREADLINE_TYPING_INTERVAL_MS=0): every signal is forwarded', async (t) => {
  const r = await room(t, 'pg', { THREADLINE_TYPING_INTERVAL_MS: '0' })
  const got = nextSignals(r.b, 4)
  for (const typing of [true, true, false, false]) await r.a.publishAsync(typingOf(r.conv), JSON.stringify({ typing }))
  t.same((await got).map(s => s.typing), [true, true, false, false])
})

t.test('cluster: a member on another node receives the signal', async (t) => {
  const { nodes } = await startCluster(t, 2)
  const [n1, n2] = nodes as [Threadline, Threadline]
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(n1, [alice, bob], 'group')
  const a = await connectUser(t, n1, alice, 'phone')
  const b = await connectUser(t, n2, bob, 'phone')
  await b.subscribeAsync(typingOf(conv), { qos: 0 })
  const got = nextSignals(b, 1)
  await a.publishAsync(typingOf(conv), '{"typing":true}')
  t.same(await got, [{ user_id: alice, typing: true }])
})

t.test('a topic that spells the conversation id in capitals reaches the subscribers of the canonical one', async (t) => {
  const r = await room(t)
  const got = nextSignals(r.b, 1)
  await r.a.publishAsync(typingOf(r.conv.toUpperCase()), '{"typing":true}')
  t.same(await got, [{ user_id: r.alice, typing: true }])
})

t.test('a publish to a typing topic of a conversation id that is not a UUID closes the connection, as before', async (t) => {
  const r = await room(t)
  r.a.publish('conv/not-a-uuid/typing', '{"typing":true}')
  await closed(r.a)
  t.pass('closed')
})
