// Who may use a queue and what a bad request gets (DESIGN.md §6): another user's queue
// id is 404 as an unknown one is (nothing leaked, nothing ended); no token is 401; bad
// parameters and bodies are 400 bad_request naming the field, and the node stays up.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { MAX_PRESENCE_USERS, MAX_QUEUE_CONVS } from '../../schemas/index.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { connectUser, startNode, token } from '../helpers/node.js'
import { http, LongPollClient } from '../helpers/longpoll.js'

const node = await startNode(t)
const [alice, bob, mallory] = [userId('alice'), userId('bob'), userId('mallory')]
const conv = await createConversation(node, [alice, bob])
const a = await connectUser(t, node, alice, 'phone')
const bobs = new LongPollClient(node, bob)
await bobs.open()
const malloryToken = token(node, mallory)
let sent = 0
const send = async (): Promise<void> => { await a.publishAsync(`conv/${conv}/send`, text(`m${++sent}`, `message ${sent}`), { qos: 1 }) }

t.test('another user\'s queue id is 404 not_found, tells nothing and ends nothing', async (t) => {
  await send()
  const stolen = await http<Record<string, unknown>>(node, malloryToken, 'GET', `/v1/events?queue_id=${bobs.queueId}&last_event_id=0&timeout=0`)
  t.equal(stolen.status, 404)
  t.equal(stolen.body.code, 'not_found')
  t.notOk('events' in stolen.body, 'no events in the body')
  t.notMatch(JSON.stringify(stolen.body), /message 1/, 'nothing of the queue in the answer')
  const unknown = await http<Record<string, unknown>>(node, malloryToken, 'GET', `/v1/events?queue_id=${'A'.repeat(43)}&last_event_id=0&timeout=0`)
  t.same(unknown.body, { ...stolen.body, message: (stolen.body.message as string).replace(bobs.queueId, 'A'.repeat(43)) },
    'the same answer as for an id that does not exist')

  const ended = await http(node, malloryToken, 'DELETE', `/v1/events/queue/${bobs.queueId}`)
  t.match(ended, { status: 404, body: { code: 'not_found' } }, 'DELETE of another user\'s queue: 404')
  t.match(await bobs.poll(0), [{ seq: sent }], 'the queue still works for its owner, with its events')

  // an ended queue of another user is not told apart from an unknown one either (no 410)
  const gone = new LongPollClient(node, bob)
  await gone.open({ device: 'gone' })
  t.equal((await http(node, gone.bearer, 'DELETE', `/v1/events/queue/${gone.queueId}`)).status, 204)
  t.match(await http(node, malloryToken, 'GET', `/v1/events?queue_id=${gone.queueId}&last_event_id=0&timeout=0`),
    { status: 404, body: { code: 'not_found' } }, 'another user\'s ended queue: 404, not 410')
})

t.test('no token, or a bad one: 401', async (t) => {
  const poll = `/v1/events?queue_id=${bobs.queueId}&last_event_id=0&timeout=0`
  for (const [bearer, what] of [[null, 'no token'], ['not.a.jwt', 'a malformed token']] as const) {
    t.match(await http(node, bearer, 'POST', '/v1/events/queue', { device_id: 'x' }), { status: 401, body: { code: 'unauthorized' } }, `POST, ${what}`)
    t.match(await http(node, bearer, 'GET', poll), { status: 401, body: { code: 'unauthorized' } }, `GET, ${what}`)
    t.match(await http(node, bearer, 'DELETE', `/v1/events/queue/${bobs.queueId}`), { status: 401, body: { code: 'unauthorized' } }, `DELETE, ${what}`)
  }
  t.equal((await bobs.request(0)).status, 200, 'the queue lives on')
})

t.test('bad poll parameters: 400 bad_request naming the field', async (t) => {
  await send()
  await bobs.poll(0) // the queue gave out an event: last_event_id may be up to it
  const q = bobs.queueId
  const last = bobs.lastEventId
  const cases: Array<[string, string, RegExp]> = [
    ['a missing queue_id', 'last_event_id=0', /queue_id/],
    ['a malformed queue_id', 'queue_id=short&last_event_id=0', /queue_id/],
    ['a queue_id with a bad character', `queue_id=${'A'.repeat(42)}!&last_event_id=0`, /queue_id/],
    ['a missing last_event_id', `queue_id=${q}`, /last_event_id/],
    ['a negative last_event_id', `queue_id=${q}&last_event_id=-1`, /last_event_id/],
    ['a fractional last_event_id', `queue_id=${q}&last_event_id=1.5`, /last_event_id/],
    ['a last_event_id that is no number', `queue_id=${q}&last_event_id=one`, /last_event_id/],
    ['last_event_id 2^53', `queue_id=${q}&last_event_id=${2 ** 53}`, /last_event_id/],
    ['a last_event_id past the last given', `queue_id=${q}&last_event_id=${last + 1}`, /last_event_id.*past the last event/],
    ['timeout 91', `queue_id=${q}&last_event_id=${last}&timeout=91`, /timeout/],
    ['timeout -1', `queue_id=${q}&last_event_id=${last}&timeout=-1`, /timeout/],
    ['state=sleeping', `queue_id=${q}&last_event_id=${last}&timeout=0&state=sleeping`, /state/]
  ]
  for (const [what, query, field] of cases) {
    const res = await http<{ code: string, message: string }>(node, bobs.bearer, 'GET', `/v1/events?${query}`)
    t.equal(res.status, 400, `${what}: 400`)
    t.equal(res.body.code, 'bad_request', `${what}: bad_request`)
    t.match(res.body.message, field, `${what}: "${res.body.message}" names the field`)
  }
  t.same((await bobs.request(0)).body, { events: [], last_event_id: last }, 'the queue lost nothing to the bad polls')
})

t.test('bad queue bodies: 400 bad_request naming the field; not a member: 403 not_member', async (t) => {
  const uuids = (n: number): string[] => Array.from({ length: n }, () => randomUUID())
  const users = (n: number): string[] => Array.from({ length: n }, (_v, i) => `user-${i}`)
  const cases: Array<[string, unknown, number, string, RegExp]> = [
    ['a missing device_id', {}, 400, 'bad_request', /device_id/],
    ['a device_id with a space', { device_id: 'my phone' }, 400, 'bad_request', /device_id/],
    ['a device_id of 65 chars', { device_id: 'd'.repeat(65) }, 400, 'bad_request', /device_id/],
    ['a device_id that is no string', { device_id: 7 }, 400, 'bad_request', /device_id/],
    ['conv_ids that is no array', { device_id: 'd', conv_ids: conv }, 400, 'bad_request', /conv_ids/],
    [`${MAX_QUEUE_CONVS + 1} conv_ids`, { device_id: 'd', conv_ids: uuids(MAX_QUEUE_CONVS + 1) }, 400, 'bad_request', /conv_ids/],
    ['a conv_id that is no UUID', { device_id: 'd', conv_ids: [conv, 'not-a-uuid'] }, 400, 'bad_request', /conv_ids\[1\]/],
    ['a conversation bob is not in', { device_id: 'd', conv_ids: [conv, randomUUID()] }, 403, 'not_member', /conv_ids/],
    ['user_ids that is no array', { device_id: 'd', user_ids: alice }, 400, 'bad_request', /user_ids/],
    [`${MAX_PRESENCE_USERS + 1} user_ids`, { device_id: 'd', user_ids: users(MAX_PRESENCE_USERS + 1) }, 400, 'bad_request', /user_ids/],
    ['a user_id with a slash', { device_id: 'd', user_ids: ['a/b'] }, 400, 'bad_request', /user_ids\[0\]/],
    ['invalid JSON', '{"device_id": "d",', 400, 'bad_request', /JSON/],
    ['a JSON array', '[]', 400, 'bad_request', /body/]
  ]
  const before = new LongPollClient(node, bob)
  await before.open({ device: 'd' })
  for (const [what, body, status, code, field] of cases) {
    const res = await http<{ code: string, message: string }>(node, bobs.bearer, 'POST', '/v1/events/queue', body)
    t.equal(res.status, status, `${what}: ${status}`)
    t.equal(res.body.code, code, `${what}: ${code}`)
    t.match(res.body.message, field, `${what}: "${res.body.message}" names the field`)
  }
  t.equal((await before.request(0)).status, 200, 'no refused body ended the device\'s queue')
})

t.test('a bad id in the DELETE path is 400; the node answers good requests after all of this', async (t) => {
  t.match(await http(node, bobs.bearer, 'DELETE', '/v1/events/queue/short'), { status: 400, body: { code: 'bad_request', message: /id/ } })
  await send()
  t.match(await bobs.poll(5), [{ seq: sent, text: `message ${sent}` }], 'polls still work')
  const fresh = new LongPollClient(node, alice)
  t.equal((await fresh.open({ conv_ids: [conv] })).status, 200, 'so does opening a queue')
})
