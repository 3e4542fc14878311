// PATCH /v1/events/queue/:id: a queue changes what it follows (typing of conversations,
// presence of users) without ending: what waited in it stays, numbering goes on, and
// from the answer on the new topics arrive and the old ones do not.
import t from 'tap'
import { createConversation, text } from '../helpers/fixtures.js'
import { connectUser, startNode, token } from '../helpers/node.js'
import { http, LongPollClient, type PollAnswer } from '../helpers/longpoll.js'
import { newUsers } from '../presence/watch.js'

const node = await startNode(t, { env: { THREADLINE_TYPING_INTERVAL_MS: '0' } })
const strip = (events: PollAnswer['events']): Array<Record<string, unknown>> => events.map(({ event_id: _id, ...e }) => e)

t.test('the queue follows the new conversation from the answer on; what waited stays; the old one is dropped', async (t) => {
  const [alice, bob] = await newUsers(node, 'alice', 'bob')
  const first = await createConversation(node, [alice, bob])
  const second = await createConversation(node, [alice, bob, (await newUsers(node, 'carol'))[0] as string], 'group')
  const a = await connectUser(t, node, alice, 'phone')
  const lp = new LongPollClient(node, bob)
  await lp.open({ conv_ids: [first] })
  await a.publishAsync(`conv/${first}/typing`, '{"typing":true}', { qos: 0 })
  await a.publishAsync(`conv/${first}/send`, text('m1', 'one'), { qos: 1 })

  const patched = await http<{ queue_id: string }>(node, lp.bearer, 'PATCH', `/v1/events/queue/${lp.queueId}`, { conv_ids: [second.toUpperCase()] })
  t.equal(patched.status, 200, JSON.stringify(patched.body))
  t.same(patched.body, { queue_id: lp.queueId })
  await a.publishAsync(`conv/${first}/typing`, '{"typing":false}', { qos: 0 })
  await a.publishAsync(`conv/${second}/typing`, '{"typing":true}', { qos: 0 })
  await a.publishAsync(`conv/${second}/send`, text('m2', 'two'), { qos: 1 })
  const got = await lp.collect(4)
  t.match(strip(got), [
    { t: 'typing', conv_id: first, user_id: alice, typing: true },
    { t: 'event', conv_id: first, seq: 1, text: 'one' },
    { t: 'typing', conv_id: second, user_id: alice, typing: true },
    { t: 'event', conv_id: second, seq: 1, text: 'two' }
  ], 'the first conversation\'s later typing is not followed any more; nothing that waited was lost')
  t.same(got.map(e => e.event_id), [1, 2, 3, 4], 'one queue, numbered on')
})

t.test('bad requests: 403 not_member, 404 for another user\'s or an unknown queue, 410 for an ended one, 400 for a bad body', async (t) => {
  const [alice, bob, eve] = await newUsers(node, 'alice', 'bob', 'eve')
  const conv = await createConversation(node, [alice, bob])
  const lp = new LongPollClient(node, bob)
  await lp.open()
  const patch = (bearer: string, id: string, body: unknown) => http<{ code: string, message: string }>(node, bearer, 'PATCH', `/v1/events/queue/${id}`, body)
  const notMember = await patch(token(node, eve), lp.queueId, { conv_ids: [conv] })
  t.equal(notMember.status, 403, 'eve is not in the conversation: refused before any queue is looked at (the same for any queue id)')
  t.equal(notMember.body.code, 'not_member')
  const foreign = await patch(token(node, eve), lp.queueId, {})
  t.equal(foreign.status, 404, 'not her queue: as unknown')
  t.equal(foreign.body.code, 'not_found')
  t.equal((await patch(lp.bearer, lp.queueId, { conv_ids: ['00000000-0000-4000-8000-000000000000'] })).body.code, 'not_member')
  t.equal((await patch(lp.bearer, 'x'.repeat(43), {})).status, 404)
  const bad = await patch(lp.bearer, lp.queueId, { conv_ids: 'all' })
  t.equal(bad.status, 400)
  t.match(bad.body.message, /conv_ids/)
  t.equal((await patch(lp.bearer, lp.queueId, { user_ids: Array.from({ length: 101 }, (_, i) => `u${i}`) })).status, 400)
  t.equal((await http(node, lp.bearer, 'DELETE', `/v1/events/queue/${lp.queueId}`)).status, 204)
  const ended = await patch(lp.bearer, lp.queueId, {})
  t.equal(ended.status, 410)
  t.equal(ended.body.code, 'queue_expired')
})
