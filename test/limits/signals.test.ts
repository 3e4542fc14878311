// Typing, receipts and presence have limits of their own, per user, cheaper than sends'.
// Over MQTT: a typing or presence signal over its limit is dropped (ephemeral; no answer);
// a receipt over its limit is kept, the highest per conversation, and applied once the
// bucket has a token again, so the last receipt of a burst always lands. Over HTTP all
// three answer 429 with Retry-After.
import t from 'tap'
import { setTimeout as delay } from 'node:timers/promises'
import { LIMITS_STATS } from '../../plugins/limits/index.js'
import { collect, connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { sendText } from '../helpers/access.js'
import { waitFor } from '../helpers/wait.js'

t.test('typing over its limit is dropped, over MQTT silently, over HTTP with 429; the connection stays up', async (t) => {
  // no per-conversation throttle, so only the limit shapes what gets through; a token every 200 ms, 2 at once
  const node = await startNode(t, { env: { THREADLINE_TYPING_INTERVAL_MS: '0', THREADLINE_TYPING_RATE: '5', THREADLINE_TYPING_BURST: '2' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const phone = await connectUser(t, node, alice, 'phone')
  const bobPhone = await connectUser(t, node, bob, 'phone')
  await bobPhone.subscribeAsync(`conv/${conv}/typing`, { qos: 0 })
  const limited: string[] = []
  node.telemetry.on('limited', e => limited.push(e.limit))
  const seen = collect<{ typing: boolean }>(bobPhone, 3)
  for (const typing of [true, false, true, false]) {
    await phone.publishAsync(`conv/${conv}/typing`, JSON.stringify({ typing }), { qos: 1 })
  }
  t.same(limited, ['typing', 'typing'], 'the third and fourth were over the limit')
  // one interval of the configured rate: the bucket has a token again
  await delay(250)
  await phone.publishAsync(`conv/${conv}/typing`, JSON.stringify({ typing: true }), { qos: 1 })
  t.same((await seen).map(s => s.typing), [true, false, true], 'the two in the burst, then the one after the refill: the dropped ones never arrive')
  t.ok(phone.connected, 'the connection stays up')

  await phone.publishAsync(`conv/${conv}/typing`, JSON.stringify({ typing: true }), { qos: 1 })
  const res = await node.app.inject({ method: 'POST', url: `/v1/conversations/${conv}/typing`, headers: { authorization: `Bearer ${token(node, alice)}` }, payload: { typing: false } })
  t.equal(res.statusCode, 429, 'HTTP typing shares the bucket, and answers 429')
  t.match(res.json(), { code: 'rate_limited' })
  t.ok(Number(res.headers['retry-after']) >= 1, 'with Retry-After')
})

// with the buckets in Redis, a kept receipt's take answers asynchronously
for (const redis of [false, true]) {
  t.test(`receipts over their limit: the highest of a burst lands once the bucket refills; HTTP answers 429 (buckets ${redis ? 'in Redis' : 'in memory'})`, async (t) => {
    const node = await startNode(t, { redis, env: { THREADLINE_RECEIPT_WINDOW_MS: '0', THREADLINE_RECEIPT_RATE: '5', THREADLINE_RECEIPT_BURST: '1' } })
    const [alice, bob] = [userId('alice'), userId('bob')]
    const conv = await createConversation(node, [alice, bob])
    const phone = await connectUser(t, node, alice, 'phone')
    const bobPhone = await connectUser(t, node, bob, 'phone')
    for (let i = 1; i <= 5; i++) await sendText(bobPhone, conv, `b${i}`)
    const limited: string[] = []
    node.telemetry.on('limited', e => limited.push(e.limit))
    for (let seq = 1; seq <= 5; seq++) {
      await phone.publishAsync(`conv/${conv}/read`, JSON.stringify({ status: 'read', seq }), { qos: 1 })
    }
    t.same(limited, ['receipts', 'receipts', 'receipts', 'receipts'], 'the burst was one receipt')
    t.equal(node.services.get(LIMITS_STATS)().deferredReceipts, 1, 'one kept: the highest')
    const readSeq = async (): Promise<number> => {
      const rows = await node.store.query<{ read_seq: number }>('SELECT read_seq FROM members WHERE conv_id = $1 AND user_id = $2', [conv, alice])
      return Number(rows[0]?.read_seq)
    }
    await waitFor(async () => await readSeq() === 5, 'alice\'s read marker to reach 5')
    t.pass('the last receipt of the burst landed')
    t.equal(node.services.get(LIMITS_STATS)().deferredReceipts, 0, 'nothing kept any more')
    t.ok(phone.connected, 'the connection stays up')

    await phone.publishAsync(`conv/${conv}/read`, JSON.stringify({ status: 'delivered', seq: 5 }), { qos: 1 })
    const res = await node.app.inject({ method: 'POST', url: `/v1/conversations/${conv}/receipts`, headers: { authorization: `Bearer ${token(node, alice)}` }, payload: { status: 'read', seq: 5 } })
    t.equal(res.statusCode, 429, 'HTTP receipts share the bucket, and answer 429 (the client retries it)')
    t.match(res.json(), { code: 'rate_limited' })
  })
}

t.test('presence over its limit is dropped; the connection stays up', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_PRESENCE_RATE: '1', THREADLINE_PRESENCE_BURST: '1' } })
  const alice = userId('alice')
  const phone = await connectUser(t, node, alice, 'phone')
  const limited: string[] = []
  node.telemetry.on('limited', e => limited.push(e.limit))
  for (const state of ['away', 'active', 'away']) {
    await phone.publishAsync(`user/${alice}/presence`, JSON.stringify({ state }), { qos: 1 })
  }
  t.same(limited, ['presence', 'presence'])
  t.ok(phone.connected)
})
