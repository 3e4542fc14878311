// ✓✓ delivered and read (DESIGN.md §3 conv/<c>/read, §4 "Receipts are markers", §6 POST
// …/receipts), end to end: real nodes on real PostgreSQL, real MQTT.js clients. Who gets
// the `receipts` summary: conv/<c>/receipts, the inboxes of the senders whose messages
// changed status (the whole summary), and the reader's own inbox when their read marker
// grew (their marker only).
import t from 'tap'
import { collect, connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { sendText } from '../helpers/access.js'
import { inboxDrained, publishReceipt, receiptsOn, receiptsSettled, storedMarkers, type ReceiptsEnvelope } from './helpers.js'

const WINDOW = { THREADLINE_RECEIPT_WINDOW_MS: '50' }
const isReceipts = (_topic: string, m: { t?: string }): boolean => m.t === 'receipts'

t.test('1:1: delivered then read reach the sender as summaries; the reader\'s devices get their read marker', async (t) => {
  const node = await startNode(t, { env: WINDOW })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  await a.subscribeAsync([`user/${alice}/inbox`, `conv/${conv}/receipts`], { qos: 1 })
  const b = await connectUser(t, node, bob, 'phone')
  await b.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  const bobInbox = receiptsOn(b, `user/${bob}/inbox`)

  const event = collect(b, 1, (_topic, m) => m.t === 'event')
  await sendText(a, conv, 'm1', 'hello')
  await event

  const delivered = collect<ReceiptsEnvelope>(a, 2, isReceipts)
  await publishReceipt(b, conv, 'delivered', 1)
  const [first, second] = await delivered
  const deliveredSummary = { t: 'receipts', conv_id: conv, markers: [{ user_id: bob, delivered_seq: 1, read_seq: 0 }] }
  t.same(first, deliveredSummary)
  t.same(second, deliveredSummary, 'on alice\'s inbox and on conv/<c>/receipts')
  await receiptsSettled(node)
  await inboxDrained(node, b, bob)
  t.same(bobInbox, [], 'a delivered receipt changes no unread count: nothing for bob\'s own devices')

  const read = collect<ReceiptsEnvelope>(a, 2, isReceipts)
  await publishReceipt(b, conv, 'read', 1, 0)
  const readSummary = { t: 'receipts', conv_id: conv, markers: [{ user_id: bob, delivered_seq: 1, read_seq: 1 }] }
  t.same(await read, [readSummary, readSummary])
  await receiptsSettled(node)
  await inboxDrained(node, b, bob)
  t.same(bobInbox, [readSummary], 'bob\'s devices learn his read marker')
  t.same(await storedMarkers(node.store, conv, bob), { delivered_seq: 1, read_seq: 1 })

  const list = await node.app.inject({ method: 'GET', url: '/v1/conversations', headers: { authorization: `Bearer ${token(node, bob)}` } })
  t.match(list.json().conversations[0], { id: conv, unread_count: 0, markers: { delivered_seq: 1, read_seq: 1 } })
})

t.test('group: a read goes to every sender whose messages it passed, and to nobody else\'s inbox', async (t) => {
  const node = await startNode(t, { env: WINDOW })
  const [alice, bob, carol, dave] = [userId('alice'), userId('bob'), userId('carol'), userId('dave')]
  const conv = await createConversation(node, [alice, bob, carol, dave])
  const clients = await Promise.all([alice, bob, carol, dave].map(async (u) => {
    const c = await connectUser(t, node, u, 'phone')
    await c.subscribeAsync(`user/${u}/inbox`, { qos: 1 })
    return c
  }))
  const [a, b, c, d] = clients as [typeof clients[0], typeof clients[0], typeof clients[0], typeof clients[0]]
  const inboxes = [alice, bob, carol, dave].map((u, i) => receiptsOn(clients[i] as typeof a, `user/${u}/inbox`))
  const [aliceInbox, bobInbox, carolInbox, daveInbox] = inboxes as [ReceiptsEnvelope[], ReceiptsEnvelope[], ReceiptsEnvelope[], ReceiptsEnvelope[]]
  const drainAll = () => Promise.all([alice, bob, carol, dave].map((u, i) => inboxDrained(node, clients[i] as typeof a, u)))

  const events = collect(d, 3, (_topic, m) => m.t === 'event')
  await sendText(a, conv, 'a1') // seq 1
  await sendText(b, conv, 'b1') // seq 2
  await c.publishAsync(`conv/${conv}/send`, JSON.stringify({ client_msg_id: 'c1', type: 'reaction', target_seq: 1, emoji: '👍' }), { qos: 1 }) // seq 3
  await events

  // dave has everything and reads up to bob's message
  await publishReceipt(d, conv, 'delivered', 3)
  await publishReceipt(d, conv, 'read', 2)
  await receiptsSettled(node)
  await drainAll()
  const full = { t: 'receipts', conv_id: conv, markers: [{ user_id: dave, delivered_seq: 3, read_seq: 2 }] }
  t.same(aliceInbox, [full], 'alice\'s message changed status')
  t.same(bobInbox, [full], 'so did bob\'s')
  t.same(carolInbox, [], 'carol sent a reaction, not a message: no ticks for her')
  t.same(daveInbox, [full], 'dave\'s devices learn his markers (read grew)')

  // carol reads only the first message: alice's ticks change, bob's do not
  await publishReceipt(c, conv, 'read', 1)
  await receiptsSettled(node)
  await drainAll()
  const carolRead = { t: 'receipts', conv_id: conv, markers: [{ user_id: carol, delivered_seq: 1, read_seq: 1 }] }
  t.same(aliceInbox.slice(1), [carolRead])
  t.same(bobInbox.slice(1), [], 'bob\'s message is not among those carol passed')
  t.same(carolInbox, [carolRead])
})

t.test('POST /v1/conversations/:id/receipts does what conv/<c>/read does and answers the resulting markers', async (t) => {
  // a window long enough that the three receipts surely share it
  const node = await startNode(t, { env: { THREADLINE_RECEIPT_WINDOW_MS: '1000' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  await a.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  await sendText(a, conv, 'm1')
  await sendText(a, conv, 'm2')
  const post = (body: object) => node.app.inject({
    method: 'POST', url: `/v1/conversations/${conv}/receipts`, headers: { authorization: `Bearer ${token(node, bob)}` }, payload: body
  })

  const summary = collect<ReceiptsEnvelope>(a, 1, isReceipts)
  const delivered = await post({ status: 'delivered', seq: 2 })
  t.equal(delivered.statusCode, 202)
  t.same(delivered.json(), { conv_id: conv, user_id: bob, delivered_seq: 2, read_seq: 0 })
  const read = await post({ status: 'read', seq: 1 })
  t.equal(read.statusCode, 202)
  t.same(read.json(), { conv_id: conv, user_id: bob, delivered_seq: 2, read_seq: 1 }, 'the pending delivered marker is part of the answer')
  const stale = await post({ status: 'delivered', seq: 1 })
  t.same(stale.json(), { conv_id: conv, user_id: bob, delivered_seq: 2, read_seq: 1 }, 'a stale receipt changes nothing')
  t.same(await summary, [{ t: 'receipts', conv_id: conv, markers: [{ user_id: bob, delivered_seq: 2, read_seq: 1 }] }],
    'the three receipts of one window make one summary')
  await receiptsSettled(node)
  t.same(await storedMarkers(node.store, conv, bob), { delivered_seq: 2, read_seq: 1 })
})
