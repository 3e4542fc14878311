import t from 'tap'
import { collect, connectUser, startNode } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'

interface Envelope { t: string, conv_id: string, seq: number, sender_id: string, client_msg_id: string }

const SENDERS = 5
const EACH = 40

for (const store of ['pg', 'pglite'] as const) {
  t.test(`[${store}] concurrent senders in one group: gapless seqs, one order on every device, each sender's publish order kept`, async (t) => {
    const node = await startNode(t, { store })
    const users = Array.from({ length: SENDERS }, (_, i) => userId(`u${i}`))
    const conv = await createConversation(node, users, 'group')
    const clients = await Promise.all(users.map(u => connectUser(t, node, u, 'phone')))
    const watchers = await Promise.all(users.map(u => connectUser(t, node, u, 'tablet', { ws: true })))
    for (const [i, c] of [...clients, ...watchers].entries()) await c.subscribeAsync(`user/${users[i % SENDERS]}/inbox`, { qos: 1 })
    const total = SENDERS * EACH
    const arrivals = [...clients, ...watchers].map(c => collect<Envelope>(c, total, (_t, m) => m.t === 'event'))

    await Promise.all(clients.map((c, s) => Promise.all(
      Array.from({ length: EACH }, (_, i) => c.publishAsync(`conv/${conv}/send`, text(`s${s}-${i}`, `sender ${s} message ${i}`), { qos: 1 }))
    )))

    const seen = await Promise.all(arrivals)
    const reference = seen[0] as Envelope[]
    t.same(reference.map(e => e.seq), Array.from({ length: total }, (_, k) => k + 1), 'seqs are gapless 1..N')
    for (const [i, got] of seen.entries()) {
      t.same(got.map(e => e.client_msg_id), reference.map(e => e.client_msg_id), `device ${i} sees the same order`)
    }
    for (const [s, u] of users.entries()) {
      const own = reference.filter(e => e.sender_id === u).map(e => e.client_msg_id)
      t.same(own, Array.from({ length: EACH }, (_, i) => `s${s}-${i}`), `sender ${s}: publish order kept`)
    }
  })
}
