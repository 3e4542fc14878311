// The signals a queue carries besides the inbox (DESIGN.md §6): typing of the
// conversations it asked for while its user is still in them, presence of the users it
// asked for as their privacy lets its user see them; and the presence of the polling
// device itself, which counts as connected from its first poll until its queue ends or
// the linger time after its last poll. Real MQTT clients watch what others see.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { PRESENCE_SERVICE } from '../../core/presence/service.js'
import { createConversation, text } from '../helpers/fixtures.js'
import { collect, connectUser, startNode, token } from '../helpers/node.js'
import { http, LongPollClient, type PollAnswer } from '../helpers/longpoll.js'
import { untilOnline } from '../helpers/push.js'
import { withTimeout } from '../helpers/wait.js'
import { newUsers, presenceOf, setVisibility, watcher } from '../presence/watch.js'

const GRACE_MS = 200
const node = await startNode(t, { env: { THREADLINE_TYPING_INTERVAL_MS: '0', THREADLINE_PRESENCE_GRACE_MS: String(GRACE_MS) } })

const strip = (events: PollAnswer['events']): Array<Record<string, unknown>> => events.map(({ event_id: _id, ...e }) => e)

async function typing (client: MqttClient, conv: string, on: boolean): Promise<void> {
  await client.publishAsync(`conv/${conv}/typing`, JSON.stringify({ typing: on }), { qos: 0 })
}

t.test('typing of conv_ids arrives; of other conversations not; after the user left a conversation, not from it', async (t) => {
  const [alice, bob, carol] = await newUsers(node, 'alice', 'bob', 'carol')
  const group = await createConversation(node, [alice, bob, carol], 'group')
  const direct = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  // carol watches the group's typing: once she saw a signal, the queue had its chance at it too
  const c = await connectUser(t, node, carol, 'phone')
  await c.subscribeAsync(`conv/${group}/typing`, { qos: 0 })
  const lp = new LongPollClient(node, bob)
  await lp.open({ conv_ids: [group.toUpperCase()] })

  await typing(a, group, true)
  t.same(strip(await lp.poll(5)), [{ t: 'typing', conv_id: group, user_id: alice, typing: true }], 'over MQTT')
  const stopped = await http(node, token(node, alice), 'POST', `/v1/conversations/${group}/typing`, { typing: false })
  t.equal(stopped.status, 204)
  t.same(strip(await lp.poll(5)), [{ t: 'typing', conv_id: group, user_id: alice, typing: false }], 'over HTTP')

  // typing in a conversation the queue did not ask for; then a message there as a marker
  await typing(a, direct, true)
  await a.publishAsync(`conv/${direct}/send`, text('d1', 'in the direct one'), { qos: 1 })
  t.match(strip(await lp.poll(5)), [{ t: 'event', conv_id: direct, seq: 1 }], 'the direct conversation\'s typing is not in the queue')

  const removed = await http(node, token(node, alice), 'DELETE', `/v1/conversations/${group}/members/${bob}`)
  t.equal(removed.status, 204)
  t.same(strip(await lp.poll(5)), [{ t: 'membership', conv_id: group, change: 'removed', user_ids: [bob] }])
  const seen = collect(c, 1, (topic) => topic === `conv/${group}/typing`)
  await typing(a, group, true)
  await seen
  await a.publishAsync(`conv/${direct}/send`, text('d2', 'marker'), { qos: 1 })
  t.match(strip(await lp.poll(5)), [{ t: 'event', conv_id: direct, seq: 2 }], 'no typing of the conversation bob left')
})

t.test('presence of user_ids: the create answer as GET /v1/presence, then changes; a hidden user never', async (t) => {
  const [bob, alice, dave] = await newUsers(node, 'bob', 'alice', 'dave')
  await setVisibility(node, dave, 'nobody')
  const ghost = 'ghost-without-a-row'
  const lp = new LongPollClient(node, bob)
  const opened = await lp.open({ user_ids: [alice, dave, ghost] })
  t.same(opened.body.presence, await presenceOf(node, bob, [alice, dave, ghost]), 'what GET /v1/presence answers')
  t.same(opened.body.presence, [
    { user_id: alice, state: 'offline' },
    { user_id: dave, state: 'unknown' },
    { user_id: ghost, state: 'unknown' }
  ])

  // dave comes online first: his own second device sees it, so the queue had its chance at it
  const daveSelf = await watcher(t, node, dave, 'self')
  t.equal(await daveSelf.watch(dave), 0)
  const davePhone = await connectUser(t, node, dave, 'phone')
  await daveSelf.next(dave, 'online')
  const phone = await connectUser(t, node, alice, 'phone')
  t.same(strip(await lp.poll(5)), [{ t: 'presence', user_id: alice, state: 'online' }], 'alice\'s change, not dave\'s')

  await davePhone.endAsync()
  await phone.endAsync()
  const offline = strip(await lp.poll(5))
  t.match(offline, [{ t: 'presence', user_id: alice, state: 'offline', last_seen: String }], 'offline, with last_seen')
  t.equal(offline.length, 1, 'still nothing of dave')
})

t.test('the polling device itself: online from its first poll, away on state=away, offline when its queue is deleted', async (t) => {
  const [bob, carol] = await newUsers(node, 'bob', 'carol')
  const viewer = await watcher(t, node, carol)
  t.equal(await viewer.watch(bob), 0)
  const lp = new LongPollClient(node, bob)
  await lp.open()
  t.notOk(await node.services.get(PRESENCE_SERVICE).isConnected(bob), 'an open queue not yet polled is no device')

  const held = lp.request(30)
  t.same(await viewer.next(bob), { user_id: bob, state: 'online' }, 'online on the first poll')
  t.same((await lp.request(0, '&state=away')).body.events, [])
  t.same(await viewer.next(bob), { user_id: bob, state: 'away' }, 'away when a poll says state=away')
  t.same((await lp.request(0, '&state=active')).body.events, [])
  t.same(await viewer.next(bob), { user_id: bob, state: 'online' }, 'online again on state=active')

  const deletedAt = performance.now()
  t.equal((await http(node, lp.bearer, 'DELETE', `/v1/events/queue/${lp.queueId}`)).status, 204)
  t.match(await withTimeout(held, 'the held poll to end'), { status: 410 })
  t.match(await viewer.next(bob), { user_id: bob, state: 'offline' }, 'offline once the queue is gone')
  const ms = performance.now() - deletedAt
  // the linger time is 30 s here: only the queue's end can have sent bob offline this soon
  t.ok(ms < 5000, `offline ${ms.toFixed(0)} ms after DELETE (grace ${GRACE_MS} ms)`)
  t.same(viewer.states(bob), ['online', 'away', 'online', 'offline'])
})

t.test('a device that stops polling goes offline THREADLINE_LONGPOLL_LINGER_MS after its last poll', async (t) => {
  const LINGER_MS = 400
  const own = await startNode(t, { env: { THREADLINE_LONGPOLL_LINGER_MS: String(LINGER_MS), THREADLINE_PRESENCE_GRACE_MS: String(GRACE_MS) } })
  const [bob, carol] = await newUsers(own, 'bob', 'carol')
  const viewer = await watcher(t, own, carol)
  t.equal(await viewer.watch(bob), 0)
  const lp = new LongPollClient(own, bob)
  await lp.open()
  // polls of 1 s back to back, each longer than the linger time: bob stays online throughout
  let endedAt = 0
  for (let i = 0; i < 3; i++) {
    t.same(await lp.poll(1), [])
    endedAt = performance.now()
  }
  await viewer.next(bob, 'offline')
  const ms = performance.now() - endedAt
  t.same(viewer.states(bob), ['online', 'offline'], 'online while polling, offline once the polls stopped')
  t.ok(ms >= LINGER_MS + GRACE_MS - 50, `offline ${ms.toFixed(0)} ms after the last poll ended (linger ${LINGER_MS} + grace ${GRACE_MS})`)
  await untilOnline(own, bob, false)
})
