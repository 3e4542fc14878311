import t from 'tap'
import { UNLIMITED_SENDS, collect, connectUser, startNode } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'

interface Envelope { t: string, conv_id: string, seq: number, sender_id: string, client_msg_id: string, text?: string }

const N = 200

for (const store of ['pg', 'pglite'] as const) {
  t.test(`[${store}] 200 messages reach every device of both users in seq order, none missing, none twice`, async (t) => {
    const node = await startNode(t, { store, env: UNLIMITED_SENDS })
    const alice = userId('alice')
    const bob = userId('bob')
    const conv = await createConversation(node, [alice, bob])

    const alicePhone = await connectUser(t, node, alice, 'phone')
    const aliceWeb = await connectUser(t, node, alice, 'web', { ws: true })
    const bobPhone = await connectUser(t, node, bob, 'phone')
    const bobWeb = await connectUser(t, node, bob, 'web', { ws: true })
    for (const [client, user] of [[alicePhone, alice], [aliceWeb, alice], [bobPhone, bob], [bobWeb, bob]] as const) {
      const granted = await client.subscribeAsync(`user/${user}/inbox`, { qos: 1 })
      t.equal(granted[0]?.qos, 1, 'inbox subscription granted at QoS 1')
    }

    const isEvent = (_topic: string, m: Envelope): boolean => m.t === 'event' && m.conv_id === conv
    const arrivals = [alicePhone, aliceWeb, bobPhone, bobWeb].map(c => collect<Envelope>(c, N, isEvent))

    // all in flight at once on one connection: their publish order must become seq order
    const acks = []
    for (let i = 1; i <= N; i++) acks.push(alicePhone.publishAsync(`conv/${conv}/send`, text(`m${i}`, `message ${i}`), { qos: 1 }))
    await Promise.all(acks)

    const devices = await Promise.all(arrivals)
    for (const [i, got] of devices.entries()) {
      t.same(got.map(e => e.seq), Array.from({ length: N }, (_, k) => k + 1), `device ${i}: seqs 1..${N} in order`)
      t.same(got.map(e => e.client_msg_id), Array.from({ length: N }, (_, k) => `m${k + 1}`), `device ${i}: publish order kept`)
      t.ok(got.every(e => e.sender_id === alice), `device ${i}: sender stamped`)
    }
    const stored = await node.store.query<{ n: number, max: number }>('SELECT count(*)::int AS n, max(seq)::int AS max FROM events WHERE conv_id = $1', [conv])
    t.same(stored[0], { n: N, max: N }, 'exactly N events stored')
    const last = await node.store.query<{ last_seq: number }>('SELECT last_seq FROM conversations WHERE id = $1', [conv])
    t.equal(last[0]?.last_seq, N, 'conversation last_seq follows')
  })
}

t.test('a device that subscribes only to its inbox receives nothing of conversations it is not in', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
  const convAB = await createConversation(node, [alice, bob])
  const convAC = await createConversation(node, [alice, carol])
  const a = await connectUser(t, node, alice, 'phone')
  const b = await connectUser(t, node, bob, 'phone')
  await b.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  const seen = collect<Envelope>(b, 2)
  await a.publishAsync(`conv/${convAC}/send`, text('secret', 'for carol only'), { qos: 1 })
  await a.publishAsync(`conv/${convAB}/send`, text('one', 'for bob'), { qos: 1 })
  await a.publishAsync(`conv/${convAB}/send`, text('two', 'for bob'), { qos: 1 })
  const got = await seen
  t.same(got.map(e => e.client_msg_id), ['one', 'two'])
})
