// Who gets a push and what it says (DESIGN.md §4): the real node, the real @parse/node-apn
// and firebase-admin clients, and fakes of APNs and FCM that speak their protocols.
// "Online" comes from real MQTT connections through the presence service.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { connectUser, token } from '../helpers/node.js'
import { userId } from '../helpers/fixtures.js'
import { pushCredentials, startFakeApns, startFakeFcm } from '../helpers/push-fakes.js'
import { createDirect, createGroup, fcmToken, iosToken, mute, registerDevice, startPushNode, untilOnline } from '../helpers/push.js'
import type { Threadline } from '../../broker/server.js'

// a key file per test: firebase-admin keeps one credential per key file path for the
// process's life, with the agent of the node that used it first (plugins/push/fcm.ts)

async function connectNamed (t: Parameters<typeof connectUser>[0], node: Threadline, user: string, name: string): Promise<MqttClient> {
  return await connectUser(t, node, user, 'phone', { password: token(node, user, { name }) })
}

async function send (client: MqttClient, convId: string, body: Record<string, unknown>): Promise<void> {
  await client.publishAsync(`conv/${convId}/send`, JSON.stringify(body), { qos: 1 })
}

t.test('an offline member is pushed once on each of two devices, coalesced, with the badge; an online member is not', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const fcm = await startFakeFcm(t, creds.fcm)
  const { node } = await startPushNode(t, creds, { apns, fcm }, { env: { THREADLINE_PUSH_WINDOW_MS: '400' } })
  const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
  const convId = await createGroup(t, node, alice, 'Weekend', [bob, carol])
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(1))
  await registerDevice(t, node, bob, 'pixel', 'android', fcmToken('bob'))
  await registerDevice(t, node, carol, 'iphone', 'ios', iosToken(2))
  const a = await connectNamed(t, node, alice, 'Alice')
  await connectUser(t, node, carol, 'phone')
  await untilOnline(node, carol)

  for (const [i, text] of ['hey', 'are you there?', 'call me'].entries()) await send(a, convId, { client_msg_id: `m${i}`, type: 'text', text })
  await apns.until(() => apns.requests.length >= 1, 'the APNs push')
  await fcm.until(() => fcm.requests.length >= 1, 'the FCM push')

  t.equal(apns.requests.length, 1, 'one APNs notification for the window, none for the online member')
  const ios = apns.requests[0]
  t.equal(ios?.token, iosToken(1))
  t.equal(ios?.topic, creds.apns.topic, 'apns-topic is the bundle id')
  t.equal(ios?.pushType, 'alert')
  t.equal(ios?.collapseId, convId, 'apns-collapse-id: one per conversation')
  t.same(ios?.payload.aps.alert, { title: 'Weekend', body: 'Alice: 3 new messages' })
  t.equal(ios?.payload.aps.badge, 3, 'badge = total unread')
  t.match(ios?.payload, { conv_id: convId, seq: 3 })

  t.equal(fcm.requests.length, 1)
  const android = fcm.requests[0]?.message
  t.equal(android?.token, fcmToken('bob'))
  t.same(android?.notification, { title: 'Weekend', body: 'Alice: 3 new messages' })
  t.same(android?.data, { conv_id: convId, seq: '3', badge: '3' })
  t.match(android?.android, { collapse_key: convId, notification: { tag: convId, notification_count: 3 } })

  // the next window: one message, quoted; the badge counts everything unread
  await send(a, convId, { client_msg_id: 'm3', type: 'text', text: 'ok, later then' })
  await apns.until(() => apns.requests.length >= 2, 'the second APNs push')
  t.same(apns.requests[1]?.payload.aps.alert, { title: 'Weekend', body: 'Alice: ok, later then' })
  t.equal(apns.requests[1]?.payload.aps.badge, 4)
  t.same(apns.refused, [], 'every request carried a valid provider token, topic and push type')
  t.same(fcm.refused, [], 'every request carried a valid OAuth token')
})

t.test('a direct conversation is titled with the sender; several conversations are summed up', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const { node } = await startPushNode(t, creds, { apns, fcm: null }, { env: { THREADLINE_PUSH_WINDOW_MS: '400' } })
  const [alice, bob, dora] = [userId('alice'), userId('bob'), userId('dora')]
  const direct = await createDirect(t, node, alice, bob)
  const group = await createGroup(t, node, alice, 'Band', [bob, dora])
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(1))
  const a = await connectNamed(t, node, alice, 'Alice')
  const d = await connectNamed(t, node, dora, 'Dora')

  await send(a, direct, { client_msg_id: 'd1', type: 'text', text: 'hey' })
  await apns.until(() => apns.requests.length >= 1, 'the first push')
  t.same(apns.requests[0]?.payload.aps.alert, { title: 'Alice', body: 'Alice: hey' }, 'the title is the sender\'s display name')

  await send(a, direct, { client_msg_id: 'd2', type: 'text', text: 'one' })
  await send(a, group, { client_msg_id: 'g1', type: 'text', text: 'two' })
  await send(d, group, { client_msg_id: 'g2', type: 'text', text: 'three' })
  await apns.until(() => apns.requests.length >= 2, 'the summary push')
  t.same(apns.requests[1]?.payload.aps.alert, { body: '2 conversations: 3 new messages' })
  t.match(apns.requests[1]?.payload, { conv_id: group, seq: 2 }, 'a tap opens the newest message')
  t.equal(apns.requests[1]?.payload.aps.badge, 4)

  await send(a, group, { client_msg_id: 'g3', type: 'text', text: 'four' })
  await send(d, group, { client_msg_id: 'g4', type: 'text', text: 'five' })
  await apns.until(() => apns.requests.length >= 3, 'the group push')
  t.same(apns.requests[2]?.payload.aps.alert, { title: 'Band', body: '2 new messages' }, 'several senders: no one name')
})

t.test('muted conversations, reactions, edits and deletes do not push; replies do', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const { node } = await startPushNode(t, creds, { apns, fcm: null }, { env: { THREADLINE_PUSH_WINDOW_MS: '150' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const quiet = await createGroup(t, node, alice, 'Quiet', [bob])
  const loud = await createGroup(t, node, alice, 'Loud', [bob])
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(7))
  await mute(t, node, bob, quiet, new Date(Date.now() + 3_600_000).toISOString())
  const a = await connectNamed(t, node, alice, 'Alice')

  await send(a, quiet, { client_msg_id: 'q1', type: 'text', text: 'muted' })
  await send(a, loud, { client_msg_id: 'l1', type: 'text', text: 'first' })
  await apns.until(() => apns.requests.length >= 1, 'the push of the loud conversation')
  t.same(apns.requests[0]?.payload.aps.alert, { title: 'Loud', body: 'Alice: first' }, 'the muted conversation is left out')

  await send(a, loud, { client_msg_id: 'l2', type: 'reaction', target_seq: 1, emoji: '👍' })
  await send(a, loud, { client_msg_id: 'l3', type: 'edit', target_seq: 1, text: 'first!' })
  await send(a, loud, { client_msg_id: 'l4', type: 'delete', target_seq: 1 })
  await send(a, quiet, { client_msg_id: 'q2', type: 'text', text: 'still muted' })
  await send(a, loud, { client_msg_id: 'l5', type: 'text', text: 'replying', reply_to: 1 })
  await apns.until(() => apns.requests.length >= 2, 'the push of the reply')
  t.same(apns.requests[1]?.payload.aps.alert, { title: 'Loud', body: 'Alice: replying' }, 'only the reply made it into the window')
  t.match(apns.requests[1]?.payload, { conv_id: loud, seq: 5 })
  t.equal(apns.requests[1]?.payload.aps.badge, 3, 'unread: the two muted texts and the reply (the deleted first message is not)')

  await mute(t, node, bob, quiet, null)
  await send(a, quiet, { client_msg_id: 'q3', type: 'text', text: 'unmuted' })
  await apns.until(() => apns.requests.length >= 3, 'the push after unmuting')
  t.same(apns.requests[2]?.payload.aps.alert, { title: 'Quiet', body: 'Alice: unmuted' })
})

t.test('coming online inside the window cancels the push', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const { node } = await startPushNode(t, creds, { apns, fcm: null }, { env: { THREADLINE_PUSH_WINDOW_MS: '1000' } })
  const [alice, bob, erin] = [userId('alice'), userId('bob'), userId('erin')]
  const convId = await createGroup(t, node, alice, 'Soon', [bob, erin])
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(1))
  await registerDevice(t, node, erin, 'iphone', 'ios', iosToken(2))
  const a = await connectNamed(t, node, alice, 'Alice')

  await send(a, convId, { client_msg_id: 'm1', type: 'text', text: 'anyone?' })
  // bob opens the app within the window; erin stays away and is the window's witness
  await connectUser(t, node, bob, 'phone')
  await untilOnline(node, bob)
  await apns.until(() => apns.requests.some(r => r.token === iosToken(2)), 'erin\'s push')
  t.same(apns.requests.map(r => r.token), [iosToken(2)], 'bob, online by the time the window closed, got nothing')
})

t.test('with no provider configured, messages flow and nothing is pushed', async (t) => {
  const creds = await pushCredentials(t)
  const { node, push } = await startPushNode(t, creds, { apns: null, fcm: null })
  t.same(push.providers, [])
  const [alice, bob] = [userId('alice'), userId('bob')]
  const convId = await createGroup(t, node, alice, 'Off', [bob])
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(1))
  const a = await connectNamed(t, node, alice, 'Alice')
  await send(a, convId, { client_msg_id: 'm1', type: 'text', text: 'hello' })
  t.same(push.counters(), { apns: { sent: 0, coalesced: 0, failed: 0, retried: 0, pruned: 0 }, fcm: { sent: 0, coalesced: 0, failed: 0, retried: 0, pruned: 0 } })
})
