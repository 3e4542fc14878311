// "A publish to any other topic is a protocol violation: the connection is closed
// ([MQTT-3.3.5-2])" and "only the broker publishes to user/+/inbox, conv/+/events,
// conv/+/receipts and presence/+" (DESIGN.md §3).
import t, { type Test } from 'tap'
import type { MqttClient } from 'mqtt'
import { startNode, connectUser } from '../helpers/node.js'
import { closed, createConversation, nextMessage, record, sendText, suback } from '../helpers/access.js'

const node = await startNode(t)
const convId = await createConversation(node, ['alice', 'bob'])

// bob listens on everything he may: whatever alice forges for him must never reach him
const bob = await connectUser(t, node, 'bob', 'phone')
t.same(await suback(bob, ['user/bob/inbox', `conv/${convId}/events`, `conv/${convId}/receipts`, `conv/${convId}/typing`, 'presence/alice']), [1, 1, 1, 1, 1])
const bobGot = record(bob)

const forged = JSON.stringify({ t: 'event', conv_id: convId, seq: 999, sender_id: 'alice', client_msg_id: 'forged', type: 'text', text: 'forged', ts: new Date().toISOString() })

let device = 0
async function violate (t: Test, topic: string, qos: 0 | 1 = 0): Promise<MqttClient> {
  const alice = await connectUser(t, node, 'alice', `d${++device}`)
  alice.on('error', () => {})
  if (qos === 0) alice.publish(topic, forged, { qos })
  else alice.publishAsync(topic, forged, { qos }).catch(() => {}) // never PUBACKed: the connection closes
  await closed(alice)
  return alice
}

const violations: Array<[string, string]> = [
  ['another user\'s inbox', 'user/bob/inbox'],
  ['one\'s own inbox', 'user/alice/inbox'],
  ['a conversation\'s events', `conv/${convId}/events`],
  ['a conversation\'s receipts', `conv/${convId}/receipts`],
  ['a user\'s presence', 'presence/alice'],
  ['another user\'s presence setting', 'user/bob/presence'],
  ['$SYS', '$SYS/x'],
  ['the broker\'s own $ channel', '$threadline/membership'],
  ['an unknown conversation topic', `conv/${convId}/secrets`],
  ['an unknown user topic', 'user/bob/outbox'],
  ['a malformed conversation topic', 'conv/not-a-uuid/events'],
  ['a bare namespace', 'conv']
]

for (const [what, topic] of violations) {
  t.test(`publishing to ${what} (${topic}) closes the connection`, async (t) => {
    const alice = await violate(t, topic)
    t.notOk(alice.connected)
  })
}

t.test('a QoS 1 publish to a broker-only topic closes the connection without a PUBACK', async (t) => {
  let acked = false
  const alice = await connectUser(t, node, 'alice', 'qos1')
  alice.on('packetreceive', (packet) => { if (packet.cmd === 'puback') acked = true })
  alice.on('error', () => {})
  alice.publishAsync('user/bob/inbox', forged, { qos: 1 }).catch(() => {})
  await closed(alice)
  t.notOk(acked)
})

t.test('nothing forged reached a subscriber, and real traffic still flows', async (t) => {
  // a real send after all the violations: it reaches bob, and nothing came before it
  const alice = await connectUser(t, node, 'alice', 'real')
  const inbox = nextMessage(bob, 'user/bob/inbox')
  const onEvents = nextMessage(bob, `conv/${convId}/events`)
  await sendText(alice, convId, 'real-1')
  t.match(await inbox, { client_msg_id: 'real-1', sender_id: 'alice' })
  t.match(await onEvents, { client_msg_id: 'real-1' })
  const events = bobGot.map(m => JSON.parse(m.payload) as { t?: string, client_msg_id?: string }).filter(m => m.t === 'event')
  t.same(events.map(m => m.client_msg_id), ['real-1', 'real-1'], 'no event but the real send, on inbox and events')
  t.notOk(bobGot.some(m => m.payload.includes('forged')))
})

t.test('the allowed client topics do not close the connection', async (t) => {
  const alice = await connectUser(t, node, 'alice', 'allowed')
  await alice.publishAsync(`conv/${convId}/typing`, JSON.stringify({ typing: true }), { qos: 0 })
  await alice.publishAsync(`conv/${convId}/read`, JSON.stringify({ status: 'read', seq: 1 }), { qos: 1 })
  await alice.publishAsync('user/alice/presence', JSON.stringify({ state: 'active' }), { qos: 0 })
  await sendText(alice, convId, 'allowed-1')
  t.same(await suback(alice, 'user/alice/inbox'), [1], 'still connected')
})

t.test('a client cannot forge a membership change on the broker\'s channel', async (t) => {
  const secret = await createConversation(node, ['bob', 'carol'])
  const alice = await connectUser(t, node, 'alice', 'forger')
  alice.on('error', () => {})
  alice.publish('$threadline/membership', JSON.stringify({ conv_id: secret, added: ['alice'], removed: [] }))
  await closed(alice)
  const again = await connectUser(t, node, 'alice', 'after-forgery')
  t.same(await suback(again, `conv/${secret}/events`), [128], 'still not a member')
})

t.test('a packet over THREADLINE_MAX_PAYLOAD_BYTES to a topic other than send closes the connection', async (t) => {
  const alice = await connectUser(t, node, 'alice', 'big')
  alice.on('error', () => {})
  alice.publish(`conv/${convId}/typing`, Buffer.alloc(node.config.maxPayloadBytes + 1, 0x20), { qos: 0 })
  await closed(alice)
  t.pass('closed')
})
