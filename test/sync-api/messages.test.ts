import t from 'tap'
import { forEachStore } from '../helpers/stores.js'
import { buildTestApi, type TestApi } from '../helpers/sync-api.js'

async function setup (api: TestApi): Promise<string> {
  const res = await api.call('ann', { method: 'POST', url: '/v1/conversations', payload: { type: 'direct', members: ['ben'] } })
  api.published.length = 0
  return res.json().id
}
const post = (api: TestApi, user: string, convId: string, payload: unknown, headers: Record<string, string> = {}) =>
  api.call(user, {
    method: 'POST',
    url: `/v1/conversations/${convId}/messages`,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    headers: { 'content-type': 'application/json', ...headers }
  })

t.test('a send over HTTP is stored and fanned out like an MQTT one; the sender is the token\'s user', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await setup(api)
  const res = await post(api, 'ann', conv, { client_msg_id: 'x1', type: 'text', text: 'hello', sender_id: 'ben' })
  t.equal(res.statusCode, 201)
  const out = res.json()
  t.same(Object.keys(out).sort(), ['conv_id', 'seq', 'ts'])
  t.equal(out.conv_id, conv)
  t.equal(out.seq, 1)
  t.ok(!Number.isNaN(Date.parse(out.ts)))

  const rows = await store.query<{ sender_id: string }>('SELECT sender_id FROM events WHERE conv_id = $1', [conv])
  t.same(rows, [{ sender_id: 'ann' }], 'a forged sender_id is ignored')
  t.same(api.published.map(p => p.topic).sort(), [`conv/${conv}/events`, 'user/ann/inbox', 'user/ben/inbox'])
  t.match(api.published[0]?.payload, { t: 'event', conv_id: conv, seq: 1, sender_id: 'ann', client_msg_id: 'x1', type: 'text', text: 'hello' })
}))

t.test('a retried send with the same client_msg_id answers 200 with the original seq and stores nothing new', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await setup(api)
  const first = await post(api, 'ann', conv, { client_msg_id: 'r1', type: 'text', text: 'once' })
  await post(api, 'ben', conv, { client_msg_id: 'r1', type: 'text', text: 'same id, other sender' })
  api.published.length = 0
  const retry = await post(api, 'ann', conv, { client_msg_id: 'r1', type: 'text', text: 'once' })
  t.equal(first.statusCode, 201)
  t.equal(retry.statusCode, 200)
  t.same(retry.json(), first.json())
  const count = await store.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE conv_id = $1', [conv])
  t.equal(count[0]?.n, 2, "the other sender's r1 is a different send")
  t.same(api.published.map(p => p.topic), ['user/ann/inbox'], 'the retry is echoed to the sender only')
}))

t.test('every kind of bad send is refused with its catalog code', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await setup(api)
  await post(api, 'ann', conv, { client_msg_id: 'ok1', type: 'text', text: 'target' })
  const unknownConv = '00000000-0000-4000-8000-000000000000'
  const cases: Array<[string, string, string, unknown, number, string]> = [
    ['malformed JSON', 'ann', conv, '{"client_msg_id": "a", "type": ', 400, 'bad_request'],
    ['a JSON array', 'ann', conv, [1, 2], 400, 'bad_request'],
    ['an unknown type', 'ann', conv, { client_msg_id: 'b1', type: 'poll' }, 400, 'bad_request'],
    ['text of the wrong type', 'ann', conv, { client_msg_id: 'b2', type: 'text', text: 5 }, 400, 'bad_request'],
    ['client_msg_id missing', 'ann', conv, { type: 'text', text: 'x' }, 400, 'bad_request'],
    ['target_seq of the wrong type', 'ann', conv, { client_msg_id: 'b3', type: 'delete', target_seq: 'one' }, 400, 'bad_request'],
    ['empty text', 'ann', conv, { client_msg_id: 'b4', type: 'text', text: '' }, 400, 'bad_request'],
    ['text over 4000 code points', 'ann', conv, { client_msg_id: 'b5', type: 'text', text: 'x'.repeat(4001) }, 413, 'too_large'],
    ['an unknown conversation', 'ann', unknownConv, { client_msg_id: 'b6', type: 'text', text: 'x' }, 403, 'not_member'],
    ['a conversation of others', 'cat', conv, { client_msg_id: 'b7', type: 'text', text: 'x' }, 403, 'not_member'],
    ['an unknown target_seq', 'ann', conv, { client_msg_id: 'b8', type: 'reaction', target_seq: 99, emoji: '👍' }, 404, 'not_found'],
    ['an edit of someone else\'s message', 'ben', conv, { client_msg_id: 'b9', type: 'edit', target_seq: 1, text: 'mine now' }, 403, 'forbidden'],
    ['a conversation id that is no UUID', 'ann', 'not-a-uuid', { client_msg_id: 'b10', type: 'text', text: 'x' }, 400, 'bad_request']
  ]
  for (const [what, user, convId, payload, status, code] of cases) {
    const res = await post(api, user, convId, payload)
    t.equal(res.statusCode, status, what)
    t.equal(res.json().code, code, what)
    t.type(res.json().message, 'string', what)
  }
  const count = await store.query<{ n: number }>('SELECT count(*)::int AS n FROM events')
  t.equal(count[0]?.n, 1, 'none of them was stored')
}))

t.test('text length counts code points: 4000 emoji are accepted', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await setup(api)
  const res = await post(api, 'ann', conv, { client_msg_id: 'e1', type: 'text', text: '😀'.repeat(4000) })
  t.equal(res.statusCode, 201, res.body)
}))

t.test('a body over the payload limit answers 413 too_large', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store, { config: { maxPayloadBytes: 2048 } })
  const conv = await setup(api)
  const res = await post(api, 'ann', conv, { client_msg_id: 'big', type: 'text', text: 'y'.repeat(3000) })
  t.equal(res.statusCode, 413)
  t.match(res.json(), { code: 'too_large', message: /2048-byte limit/ })
}))
