// Bad receipts get their documented error and change nothing; the connection stays up
// (DESIGN.md §4 "Rejected, not disconnected"). Over MQTT the error is an `error` envelope
// on the sender's inbox; over HTTP the status of its code.
import t from 'tap'
import { collect, connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { sendText } from '../helpers/access.js'
import { publishReceipt, receiptStats, receiptsSettled, storedMarkers } from './helpers.js'

const WINDOW = { THREADLINE_RECEIPT_WINDOW_MS: '20' }
const NOWHERE = '00000000-0000-4000-8000-000000000000'

t.test('conv/<c>/read: each bad receipt is answered on the inbox, nothing is stored, the connection stays up', async (t) => {
  const node = await startNode(t, { env: WINDOW })
  const [alice, bob, eve] = [userId('alice'), userId('bob'), userId('eve')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  await sendText(a, conv, 'm1')
  await sendText(a, conv, 'm2')
  const b = await connectUser(t, node, bob, 'phone')
  await b.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  const e = await connectUser(t, node, eve, 'phone')
  await e.subscribeAsync(`user/${eve}/inbox`, { qos: 1 })

  const cases: Array<[string, string | Buffer, string, RegExp | string]> = [
    ['not JSON', '{"status":', 'bad_request', 'payload is not valid JSON'],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'bad_request', 'payload is not valid UTF-8'],
    ['an array', '[1]', 'bad_request', 'receipt must be a JSON object'],
    ['no status', '{"seq":1}', 'bad_request', /^receipt: /],
    ['an unknown status', '{"status":"seen","seq":1}', 'bad_request', /^receipt: status /],
    ['seq 0', '{"status":"read","seq":0}', 'bad_request', /^receipt: seq /],
    ['a fractional seq', '{"status":"read","seq":1.5}', 'bad_request', /^receipt: seq /],
    ['seq as text', '{"status":"read","seq":"1"}', 'bad_request', /^receipt: seq /],
    ['seq above 2^53−1', '{"status":"read","seq":9007199254740993}', 'bad_request', /^receipt: seq /],
    ['seq beyond the last event', '{"status":"read","seq":3}', 'not_found', 'seq 3 does not exist: the conversation\'s last seq is 2']
  ]
  for (const [what, payload, code, message] of cases) {
    const answer = collect<{ t: string, conv_id: string, code: string, message: string }>(b, 1, (_topic, m) => m.t === 'error')
    await b.publishAsync(`conv/${conv}/read`, payload, { qos: 1 })
    const [err] = await answer
    t.match(err, { t: 'error', conv_id: conv, code, message }, what)
  }
  await receiptsSettled(node)
  t.same(await storedMarkers(node.store, conv, bob), { delivered_seq: 0, read_seq: 0 }, 'nothing was stored')
  t.equal(receiptStats(node).refused, cases.length)

  for (const [what, c] of [['not a member', conv], ['no such conversation', NOWHERE]] as const) {
    const answer = collect<{ t: string, code: string, message: string }>(e, 1, (_topic, m) => m.t === 'error')
    await publishReceipt(e, c, 'read', 1)
    t.match((await answer)[0], { t: 'error', conv_id: c, code: 'not_member', message: `you are not a member of conversation ${c}` }, what)
  }
  t.same(await storedMarkers(node.store, conv, eve), undefined)

  t.ok(b.connected && e.connected, 'both connections are still up')
  await publishReceipt(b, conv, 'read', 2)
  // QoS 2 is accepted like QoS 1
  await b.publishAsync(`conv/${conv}/read`, JSON.stringify({ status: 'delivered', seq: 2, extra: 'ignored' }), { qos: 2 })
  await receiptsSettled(node)
  t.same(await storedMarkers(node.store, conv, bob), { delivered_seq: 2, read_seq: 2 }, 'and a good receipt still works')
})

t.test('POST /v1/conversations/:id/receipts: bad input answers its status and changes nothing', async (t) => {
  const node = await startNode(t, { env: WINDOW })
  const [alice, bob, eve] = [userId('alice'), userId('bob'), userId('eve')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  await sendText(a, conv, 'm1')
  const post = (user: string | null, id: string, payload: string | object) => node.app.inject({
    method: 'POST',
    url: `/v1/conversations/${id}/receipts`,
    headers: { ...(user !== null ? { authorization: `Bearer ${token(node, user)}` } : {}), 'content-type': 'application/json' },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload)
  })
  const cases: Array<[string, string | null, string, string | object, number, string, RegExp | string]> = [
    ['not JSON', bob, conv, '{"status":', 400, 'bad_request', /JSON/],
    ['no status', bob, conv, { seq: 1 }, 400, 'bad_request', /^body/],
    ['an unknown status', bob, conv, { status: 'seen', seq: 1 }, 400, 'bad_request', /^body\.status/],
    ['seq 0', bob, conv, { status: 'read', seq: 0 }, 400, 'bad_request', /^body\.seq/],
    ['a conversation id that is not a UUID', bob, 'nope', { status: 'read', seq: 1 }, 400, 'bad_request', /^params\.id/],
    ['seq beyond the last event', bob, conv, { status: 'read', seq: 2 }, 404, 'not_found', 'seq 2 does not exist: the conversation\'s last seq is 1'],
    ['not a member', eve, conv, { status: 'read', seq: 1 }, 403, 'not_member', `you are not a member of conversation ${conv}`],
    ['no such conversation', bob, NOWHERE, { status: 'read', seq: 1 }, 403, 'not_member', `you are not a member of conversation ${NOWHERE}`],
    ['no token', null, conv, { status: 'read', seq: 1 }, 401, 'unauthorized', /Bearer/]
  ]
  for (const [what, user, id, body, status, code, message] of cases) {
    const res = await post(user, id, body)
    t.equal(res.statusCode, status, what)
    t.match(res.json(), { code, message }, what)
  }
  await receiptsSettled(node)
  t.same(await storedMarkers(node.store, conv, bob), { delivered_seq: 0, read_seq: 0 }, 'nothing was stored')
  t.equal(receiptStats(node).accepted, 0)
})
