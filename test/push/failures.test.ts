// When a provider says no (DESIGN.md §4): a token reported gone is deleted; 429 and 5xx are
// retried with backoff, a bounded number of times, then the notification is dropped and
// counted. Real clients, fakes that answer as APNs and FCM do.
import t from 'tap'
import type { Threadline } from '../../broker/server.js'
import { connectUser, token } from '../helpers/node.js'
import { userId } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/wait.js'
import { pushCredentials, startFakeApns, startFakeFcm } from '../helpers/push-fakes.js'
import { createGroup, fcmToken, iosToken, registerDevice, startPushNode } from '../helpers/push.js'

// a key file per test: firebase-admin keeps one credential per key file path for the
// process's life, with the agent of the node that used it first (plugins/push/fcm.ts)

async function tokens (node: Threadline, user: string): Promise<string[]> {
  const rows = await node.store.query<{ push_token: string }>('SELECT push_token FROM devices WHERE user_id = $1 ORDER BY push_token', [user])
  return rows.map(r => r.push_token)
}

async function message (t: Parameters<typeof connectUser>[0], node: Threadline, from: string, convId: string, id: string): Promise<void> {
  const client = await connectUser(t, node, from, `phone-${id}`)
  await client.publishAsync(`conv/${convId}/send`, JSON.stringify({ client_msg_id: id, type: 'text', text: 'hello' }), { qos: 1 })
}

t.test('tokens the providers report gone are deleted', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const fcm = await startFakeFcm(t, creds.fcm)
  apns.answer = (push) => push.token === iosToken(1)
    ? { status: 410, reason: 'Unregistered' }
    : push.token === iosToken(2) ? { status: 400, reason: 'BadDeviceToken' } : { status: 200 }
  fcm.answer = (push) => push.token === fcmToken('gone') ? { status: 404, reason: 'UNREGISTERED' } : { status: 200 }
  const { node, push } = await startPushNode(t, creds, { apns, fcm }, { env: { THREADLINE_PUSH_WINDOW_MS: '50' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const convId = await createGroup(t, node, alice, 'Gone', [bob])
  await registerDevice(t, node, bob, 'old-iphone', 'ios', iosToken(1))
  await registerDevice(t, node, bob, 'sandbox-iphone', 'ios', iosToken(2))
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(3))
  await registerDevice(t, node, bob, 'old-pixel', 'android', fcmToken('gone'))
  await registerDevice(t, node, bob, 'pixel', 'android', fcmToken('live'))

  await message(t, node, alice, convId, 'm1')
  await waitFor(() => push.counters().apns.pruned === 2 && push.counters().fcm.pruned === 1 && push.counters().apns.sent === 1 && push.counters().fcm.sent === 1, 'three tokens pruned, two pushes sent')
  t.same(await tokens(node, bob), [fcmToken('live'), iosToken(3)].sort(), 'the live tokens stay')
  t.match(push.counters(), { apns: { sent: 1, pruned: 2, failed: 0 }, fcm: { sent: 1, pruned: 1, failed: 0 } })

  await message(t, node, alice, convId, 'm2')
  await waitFor(() => push.counters().apns.sent === 2 && push.counters().fcm.sent === 2, 'the next message pushed')
  t.equal(apns.requests.filter(r => r.token === iosToken(1)).length, 1, 'a pruned token is not tried again')
  t.equal(fcm.requests.filter(r => r.token === fcmToken('gone')).length, 1)
})

t.test('503 and 500 are retried with backoff, then given up and counted', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const fcm = await startFakeFcm(t, creds.fcm)
  apns.answer = () => ({ status: 503, reason: 'ServiceUnavailable' })
  // firebase-admin retries a 503 itself, four times over 7 s, before ours begin; a 500 it
  // leaves to us at once
  fcm.answer = () => ({ status: 500, reason: 'INTERNAL' })
  const { node, push } = await startPushNode(t, creds, { apns, fcm }, { env: { THREADLINE_PUSH_WINDOW_MS: '50', THREADLINE_PUSH_RETRIES: '2' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const convId = await createGroup(t, node, alice, 'Down', [bob])
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(1))
  await registerDevice(t, node, bob, 'pixel', 'android', fcmToken('bob'))

  await message(t, node, alice, convId, 'm1')
  await waitFor(() => push.counters().apns.failed === 1 && push.counters().fcm.failed === 1, 'both notifications given up')
  t.equal(apns.requests.length, 3, 'APNs: the first attempt and two retries')
  t.equal(fcm.requests.length, 3, 'FCM: the same')
  t.match(push.counters(), { apns: { sent: 0, retried: 2, failed: 1, pruned: 0 }, fcm: { sent: 0, retried: 2, failed: 1, pruned: 0 } })
  t.same(push.queued(), { apns: 0, fcm: 0 }, 'nothing left behind')
  t.equal((await tokens(node, bob)).length, 2, 'an outage prunes no token')
})

t.test('a 429 or 5xx that passes is retried until it is sent', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const fcm = await startFakeFcm(t, creds.fcm)
  let apnsCalls = 0
  let fcmCalls = 0
  apns.answer = () => (++apnsCalls === 1 ? { status: 429, reason: 'TooManyRequests' } : apnsCalls === 2 ? { status: 500, reason: 'InternalServerError' } : { status: 200 })
  fcm.answer = () => (++fcmCalls === 1 ? { status: 429, reason: 'QUOTA_EXCEEDED' } : { status: 200 })
  const { node, push } = await startPushNode(t, creds, { apns, fcm }, { env: { THREADLINE_PUSH_WINDOW_MS: '50' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const convId = await createGroup(t, node, alice, 'Busy', [bob])
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(1))
  await registerDevice(t, node, bob, 'pixel', 'android', fcmToken('bob'))

  await message(t, node, alice, convId, 'm1')
  await waitFor(() => push.counters().apns.sent === 1 && push.counters().fcm.sent === 1, 'both sent in the end')
  t.match(push.counters(), { apns: { sent: 1, retried: 2, failed: 0 }, fcm: { sent: 1, retried: 1, failed: 0 } })
})

t.test('a send over HTTP pushes too, never to the sender\'s own devices', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const { node, push } = await startPushNode(t, creds, { apns, fcm: null }, { env: { THREADLINE_PUSH_WINDOW_MS: '50' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const convId = await createGroup(t, node, alice, 'Self', [bob])
  await registerDevice(t, node, alice, 'iphone', 'ios', iosToken(1))
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(2))
  // alice has no device connected either: she is left out as the sender
  const res = await node.app.inject({
    method: 'POST',
    url: `/v1/conversations/${convId}/messages`,
    headers: { authorization: `Bearer ${token(node, alice)}` },
    payload: { client_msg_id: 'h1', type: 'text', text: 'over http' }
  })
  t.equal(res.statusCode, 201, res.body)
  await waitFor(() => push.counters().apns.sent === 1, 'bob pushed')
  t.same(apns.requests.map(r => r.token), [iosToken(2)])
})
