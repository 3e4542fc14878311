import t from 'tap'
import { collect, connectUser, startNode } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'

interface Envelope { t: string, conv_id: string, seq: number, client_msg_id: string }

for (const store of ['pg', 'pglite'] as const) {
  t.test(`[${store}] a retried send with the same client_msg_id stores one event and both sends learn one seq`, async (t) => {
    const node = await startNode(t, { store })
    const [alice, bob] = [userId('alice'), userId('bob')]
    const conv = await createConversation(node, [alice, bob])
    const phone = await connectUser(t, node, alice, 'phone')
    const b = await connectUser(t, node, bob, 'phone')
    await phone.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
    await b.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })

    const bobSees = collect<Envelope>(b, 2, (_t, m) => m.t === 'event')
    const aliceSees = collect<Envelope>(phone, 3, (_t, m) => m.t === 'event')
    await phone.publishAsync(`conv/${conv}/send`, text('same-id', 'hello'), { qos: 1 })
    // the retry: same id, even a different text: the original wins
    await phone.publishAsync(`conv/${conv}/send`, text('same-id', 'hello again'), { qos: 1 })
    await phone.publishAsync(`conv/${conv}/send`, text('next', 'after'), { qos: 1 })

    const mine = await aliceSees
    t.same(mine.map(e => [e.client_msg_id, e.seq]), [['same-id', 1], ['same-id', 1], ['next', 2]], 'the retry is answered with the original seq on the sender\'s inbox')
    const theirs = await bobSees
    t.same(theirs.map(e => [e.client_msg_id, e.seq]), [['same-id', 1], ['next', 2]], 'the recipient sees the event once')
    const rows = await node.store.query<{ seq: number, body: { text: string } }>('SELECT seq, body FROM events WHERE conv_id = $1 ORDER BY seq', [conv])
    t.same(rows.map(r => [r.seq, r.body.text]), [[1, 'hello'], [2, 'after']], 'one stored event per client_msg_id, no seq consumed by the retry')
  })

  t.test(`[${store}] retries in the same group commit as their original are still one event`, async (t) => {
    const node = await startNode(t, { store })
    const [alice, bob] = [userId('alice'), userId('bob')]
    const conv = await createConversation(node, [alice, bob])
    const phone = await connectUser(t, node, alice, 'phone')
    const web = await connectUser(t, node, alice, 'web')
    await Promise.all([
      phone.publishAsync(`conv/${conv}/send`, text('twin', 'a'), { qos: 1 }),
      web.publishAsync(`conv/${conv}/send`, text('twin', 'a'), { qos: 1 }),
      phone.publishAsync(`conv/${conv}/send`, text('twin', 'a'), { qos: 1 })
    ])
    const rows = await node.store.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE conv_id = $1', [conv])
    t.equal(rows[0]?.n, 1)
  })
}

t.test('the same client_msg_id from two different senders is two events', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  const b = await connectUser(t, node, bob, 'phone')
  await a.publishAsync(`conv/${conv}/send`, text('hello', 'from alice'), { qos: 1 })
  await b.publishAsync(`conv/${conv}/send`, text('hello', 'from bob'), { qos: 1 })
  const rows = await node.store.query<{ sender_id: string, seq: number }>('SELECT sender_id, seq FROM events WHERE conv_id = $1 ORDER BY seq', [conv])
  t.same(rows, [{ sender_id: alice, seq: 1 }, { sender_id: bob, seq: 2 }])
})
