// A long-poll queue carries what user/<me>/inbox carries (DESIGN.md §6): the same
// envelopes in the same order, whatever produced them (sends, edits, reactions, a retried
// send, receipt summaries, membership changes, error events of rejected MQTT sends), on
// both storage drivers. Real MQTT clients, real HTTP, real PostgreSQL and PGlite.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { collect, connectUser, startNode, token, type StoreKind } from '../helpers/node.js'
import { http, LongPollClient } from '../helpers/longpoll.js'

type Envelope = Record<string, unknown> & { t: string }

/** Every inbox envelope `client` receives, in order. */
function record (client: MqttClient, topic: string): Envelope[] {
  const got: Envelope[] = []
  client.on('message', (tp, payload) => { if (tp === topic) got.push(JSON.parse(payload.toString()) as Envelope) })
  return got
}

/** Runs `action` and resolves once an inbox envelope matching `match` reached `client`. */
async function step (client: MqttClient, match: (m: Envelope) => boolean, action: () => Promise<unknown>): Promise<Envelope> {
  const seen = collect<Envelope>(client, 1, (_topic, m) => match(m))
  await action()
  return (await seen)[0] as Envelope
}

const N = 12
const BURST = 20

for (const store of ['pg', 'pglite'] as const satisfies StoreKind[]) {
  t.test(`${store}: the queue and the MQTT inbox see the same envelopes in the same order`, async (t) => {
    const node = await startNode(t, { store })
    const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
    // a group, so that a member can be added; alice (the first) is its admin
    const conv = await createConversation(node, [alice, bob], 'group')
    const lp = new LongPollClient(node, bob)
    await lp.open({ device: 'browser' })
    const a = await connectUser(t, node, alice, 'phone')
    const phone = await connectUser(t, node, bob, 'phone')
    const laptop = await connectUser(t, node, bob, 'laptop')
    const inbox = `user/${bob}/inbox`
    await phone.subscribeAsync(inbox, { qos: 1 })
    const mqtt = record(phone, inbox)
    const send = (c: MqttClient, body: Record<string, unknown>): Promise<unknown> => c.publishAsync(`conv/${conv}/send`, JSON.stringify(body), { qos: 1 })

    for (let i = 1; i <= N; i++) {
      await step(phone, m => m.seq === i, () => a.publishAsync(`conv/${conv}/send`, text(`m${i}`, `message ${i}`), { qos: 1 }))
    }
    await step(phone, m => m.client_msg_id === 'e1', () => send(a, { client_msg_id: 'e1', type: 'edit', target_seq: 1, text: 'message 1, edited' }))
    await step(phone, m => m.client_msg_id === 'r1', () => send(a, { client_msg_id: 'r1', type: 'reaction', target_seq: 2, emoji: '👍' }))
    // bob's own message, then its retry: the original comes again, to bob's inbox only
    const mine = await step(phone, m => m.client_msg_id === 'b1', () => send(phone, { client_msg_id: 'b1', type: 'text', text: 'from bob' }))
    const retried = await step(phone, m => m.client_msg_id === 'b1', () => send(phone, { client_msg_id: 'b1', type: 'text', text: 'from bob' }))
    t.same(retried, mine, 'the retry is answered with the original event')
    // bob reads on his laptop: his own marker reaches all his devices
    await step(phone, m => m.t === 'receipts', () => laptop.publishAsync(`conv/${conv}/read`, JSON.stringify({ status: 'read', seq: N }), { qos: 1 }))
    const added = await step(phone, m => m.t === 'membership', async () => {
      const res = await http(node, token(node, alice), 'POST', `/v1/conversations/${conv}/members`, { user_ids: [carol] })
      t.equal(res.status, 200, 'carol added')
    })
    t.same(added, { t: 'membership', conv_id: conv, change: 'added', user_ids: [carol] })
    const rejected = await step(phone, m => m.t === 'error', () => send(phone, { client_msg_id: 'bad-mqtt', type: 'edit', target_seq: 999, text: 'nope' }))
    t.match(rejected, { t: 'error', client_msg_id: 'bad-mqtt', conv_id: conv, code: 'not_found' }, 'a rejected MQTT send is an error on the inbox')
    // a rejected HTTP send is answered in its HTTP reply, and nowhere else
    const refused = await http<{ code: string }>(node, lp.bearer, 'POST', `/v1/conversations/${conv}/messages`,
      { client_msg_id: 'bad-http', type: 'reaction', target_seq: 999, emoji: '👍' })
    t.equal(refused.status, 404)
    t.equal(refused.body.code, 'not_found')
    // sends of two senders racing: whatever order they commit in, both see that one
    const burst = collect<Envelope>(phone, 2 * BURST, (_topic, m) => String(m.client_msg_id).startsWith('burst-'))
    await Promise.all(Array.from({ length: BURST }, (_v, i) => [
      send(a, { client_msg_id: `burst-a${i}`, type: 'text', text: `a${i}` }),
      send(phone, { client_msg_id: `burst-b${i}`, type: 'text', text: `b${i}` })
    ]).flat())
    await burst
    await step(phone, m => m.client_msg_id === 'last', () => a.publishAsync(`conv/${conv}/send`, text('last', 'the end'), { qos: 1 }))

    const polled = await lp.collect(mqtt.length)
    t.same(await lp.poll(0), [], 'nothing more in the queue than in the inbox')
    t.same(polled.map(e => e.event_id), polled.map((_e, i) => i + 1), 'event ids count 1, 2, 3, … in the order given')
    const stripped = polled.map(({ event_id: _id, ...envelope }) => envelope)
    t.same(stripped, mqtt, 'the same envelopes in the same order')
    t.same(mqtt.map(m => m.t), [...Array<string>(N + 4).fill('event'), 'receipts', 'membership', 'error', ...Array<string>(2 * BURST + 1).fill('event')], 'every kind of inbox envelope was compared')
    t.notOk(mqtt.some(m => m.client_msg_id === 'bad-http'), 'no error event for the HTTP send')
  })
}
