// The send rate (THREADLINE_SEND_RATE/_BURST): one bucket per user, shared by MQTT and
// HTTP and by every device. Over it an MQTT send is PUBACKed and answered `rate_limited`
// with retry_after_ms on the inbox, HTTP answers 429 with Retry-After; nothing is stored,
// the connection stays up, and the sends before the limit are stored and delivered.
import t from 'tap'
import { setTimeout as delay } from 'node:timers/promises'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { collect, connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { sendText } from '../helpers/access.js'

interface Envelope { t: string, code?: string, client_msg_id?: string, conv_id?: string, retry_after_ms?: number, message?: string, seq?: number }

// a token every 200 ms, 3 at once
const LIMIT = { THREADLINE_SEND_RATE: '5', THREADLINE_SEND_BURST: '3' }

async function stored (node: Threadline, conv: string): Promise<string[]> {
  const rows = await node.store.query<{ client_msg_id: string }>('SELECT client_msg_id FROM events WHERE conv_id = $1 ORDER BY seq', [conv])
  return rows.map(r => r.client_msg_id)
}

const errorsAt = (client: MqttClient, n: number): Promise<Envelope[]> =>
  collect<Envelope>(client, n, (_topic, m) => m.t === 'error')

interface Teardownable { teardown(fn: () => unknown): void }

async function chat (t: Teardownable, env: Record<string, string> = LIMIT): Promise<{ node: Threadline, alice: string, bob: string, conv: string, phone: MqttClient, bobPhone: MqttClient }> {
  const node = await startNode(t, { env })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const phone = await connectUser(t, node, alice, 'phone')
  await phone.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  const bobPhone = await connectUser(t, node, bob, 'phone')
  await bobPhone.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  return { node, alice, bob, conv, phone, bobPhone }
}

t.test('MQTT: sends over the burst are PUBACKed in order and answered rate_limited; the ones before are stored and delivered', async (t) => {
  const { node, conv, phone, bobPhone } = await chat(t)
  const limited: string[] = []
  node.telemetry.on('limited', e => limited.push(e.limit))
  const delivered = collect<Envelope>(bobPhone, 3, (_topic, m) => m.t === 'event')
  const errors = errorsAt(phone, 2)
  // pipelined: five PUBLISHes before any PUBACK
  const acks: number[] = []
  phone.on('packetreceive', (p) => { if (p.cmd === 'puback') acks.push(p.messageId as number) })
  const sent = ['m1', 'm2', 'm3', 'm4', 'm5'].map(id => phone.publishAsync(`conv/${conv}/send`, text(id, `text ${id}`), { qos: 1 }))
  const ids = (await Promise.all(sent)).map(p => p?.messageId)
  t.same(acks, ids, 'five PUBACKs, in PUBLISH order')
  t.same((await delivered).map(e => e.client_msg_id), ['m1', 'm2', 'm3'], 'the burst is delivered in order')
  const refused = await errors
  t.same(refused.map(e => [e.code, e.client_msg_id, e.conv_id]), [['rate_limited', 'm4', conv], ['rate_limited', 'm5', conv]], 'the others are answered, by client_msg_id')
  for (const e of refused) t.ok(Number.isInteger(e.retry_after_ms) && (e.retry_after_ms as number) > 0 && (e.retry_after_ms as number) <= 200, `retry_after_ms ${e.retry_after_ms}`)
  t.same(await stored(node, conv), ['m1', 'm2', 'm3'], 'nothing refused is stored')
  t.same(limited, ['send', 'send'], 'one `limited` event per refusal')
  t.ok(phone.connected, 'the connection stays up')

  // the bucket refills: after the wait the server named, a send is stored again
  await delay(refused[1]?.retry_after_ms ?? 200)
  await sendText(phone, conv, 'm6')
  t.same(await stored(node, conv), ['m1', 'm2', 'm3', 'm6'], 'stored once the bucket had a token again')
})

t.test('one bucket per user: every device and HTTP share it; other users have their own', async (t) => {
  const { node, alice, conv, phone, bobPhone } = await chat(t)
  const web = await connectUser(t, node, alice, 'web', { ws: true })
  await sendText(phone, conv, 'p1')
  await sendText(web, conv, 'w1')
  const res1 = await node.app.inject({
    method: 'POST',
    url: `/v1/conversations/${conv}/messages`,
    headers: { authorization: `Bearer ${token(node, alice)}` },
    payload: { client_msg_id: 'h1', type: 'text', text: 'over http' }
  })
  t.equal(res1.statusCode, 201, 'the third send of the burst, over HTTP')
  // the answer goes to alice's inbox, which her phone follows
  const refusedMqtt = errorsAt(phone, 1)
  await web.publishAsync(`conv/${conv}/send`, text('w2', 'over'), { qos: 1 })
  t.match((await refusedMqtt)[0], { code: 'rate_limited', client_msg_id: 'w2' }, 'the phone\'s and HTTP\'s sends count for the web device')
  const res2 = await node.app.inject({
    method: 'POST',
    url: `/v1/conversations/${conv}/messages`,
    headers: { authorization: `Bearer ${token(node, alice)}` },
    payload: { client_msg_id: 'h2', type: 'text', text: 'over http' }
  })
  t.equal(res2.statusCode, 429, 'HTTP: 429')
  const body = res2.json()
  t.match(body, { code: 'rate_limited', message: /retry in \d+ ms/ })
  t.ok(body.retry_after_ms > 0 && body.retry_after_ms <= 200, `retry_after_ms ${body.retry_after_ms as number}`)
  t.equal(res2.headers['retry-after'], '1', 'Retry-After: whole seconds, rounded up')
  await sendText(bobPhone, conv, 'b1')
  t.same(await stored(node, conv), ['p1', 'w1', 'h1', 'b1'], 'bob\'s bucket is his own; nothing refused is stored')
})

t.test('a refused send is answered even when its payload is not JSON, and the connection stays up', async (t) => {
  const { conv, phone } = await chat(t, { THREADLINE_SEND_RATE: '1', THREADLINE_SEND_BURST: '1' })
  await sendText(phone, conv, 'first')
  const refused = errorsAt(phone, 1)
  await phone.publishAsync(`conv/${conv}/send`, 'not json', { qos: 1 })
  t.match((await refused)[0], { code: 'rate_limited', conv_id: conv })
  t.notOk('client_msg_id' in ((await refused)[0] as object), 'no client_msg_id to name')
  t.ok(phone.connected)
})
