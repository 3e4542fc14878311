// Push only when nobody is there (DESIGN.md §4), with a long-poll queue as the device: a
// member polling over HTTP gets no push; once the queue is gone, the member does. The
// real node, the real APNs client, a fake APNs speaking its protocol.
import t from 'tap'
import { connectUser, token } from '../helpers/node.js'
import { userId } from '../helpers/fixtures.js'
import { http, LongPollClient, type PollAnswer } from '../helpers/longpoll.js'
import { pushCredentials, startFakeApns } from '../helpers/push-fakes.js'
import { createGroup, iosToken, registerDevice, startPushNode, untilOnline } from '../helpers/push.js'

t.test('a member whose only device is a polled queue gets no push; after the queue is deleted, a push', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const { node } = await startPushNode(t, creds, { apns, fcm: null }, {
    env: { THREADLINE_PUSH_WINDOW_MS: '200', THREADLINE_PRESENCE_GRACE_MS: '200' }
  })
  const [alice, bob, erin] = [userId('alice'), userId('bob'), userId('erin')]
  const conv = await createGroup(t, node, alice, 'Team', [bob, erin])
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(1))
  // erin is away: her push tells that the push window of a message has closed
  await registerDevice(t, node, erin, 'iphone', 'ios', iosToken(2))
  const a = await connectUser(t, node, alice, 'phone', { password: token(node, alice, { name: 'Alice' }) })
  const send = (id: string): Promise<unknown> => a.publishAsync(`conv/${conv}/send`, JSON.stringify({ client_msg_id: id, type: 'text', text: id }), { qos: 1 })

  const lp = new LongPollClient(node, bob)
  await lp.open()
  // bob's browser polls as a client does, each poll right after the last
  const got: PollAnswer['events'] = []
  const polling = { on: true }
  const loop = (async () => {
    while (polling.on) got.push(...await lp.poll(1))
  })()
  await untilOnline(node, bob)

  await send('while-polling')
  await apns.until(() => apns.requests.some(r => r.token === iosToken(2)), 'erin\'s push of the first message')
  t.same(apns.requests.map(r => r.token), [iosToken(2)], 'no push for bob, who was polling')
  polling.on = false
  await loop
  t.match(got, [{ t: 'event', conv_id: conv, seq: 1, text: 'while-polling' }], 'bob got the message through his queue')

  t.equal((await http(node, lp.bearer, 'DELETE', `/v1/events/queue/${lp.queueId}`)).status, 204)
  await untilOnline(node, bob, false)
  await send('after-delete')
  await apns.until(() => apns.requests.some(r => r.token === iosToken(1)), 'bob\'s push')
  const bobs = apns.requests.filter(r => r.token === iosToken(1))
  t.equal(bobs.length, 1, 'one push for bob')
  t.same(bobs[0]?.payload.aps.alert, { title: 'Team', body: 'Alice: after-delete' }, 'for the message after the queue ended')
  t.same(apns.refused, [])
})
