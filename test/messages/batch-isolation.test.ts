// DESIGN.md §4 "Isolated": a send the store can't hold is refused alone (`bad_request`),
// never failing the commit batch it shares. The schemas already refuse every value we
// know PostgreSQL rejects, so the store is given a rule of its own here (a CHECK
// constraint, as an operator might add) that a send can pass validation and still break.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { collect, connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/wait.js'

interface Msg { t: string, code?: string, seq?: number, sender_id?: string, client_msg_id?: string, text?: string }

const SENDERS = 8
const POISON_AT = 4

for (const store of ['pg', 'pglite'] as const) {
  t.test(`${store}: one send the store refuses inside a batch fails alone; the batch's other sends commit`, async (t) => {
    const node = await startNode(t, { store })
    const users = Array.from({ length: SENDERS }, (_, i) => userId(`s${i}`))
    const reader = userId('reader')
    const conv = await createConversation(node, [reader, ...users], 'group')
    await node.store.query('ALTER TABLE events ADD CONSTRAINT test_no_poison CHECK (body->>\'text\' IS DISTINCT FROM \'poison\')')

    const r = await connectUser(t, node, reader, 'phone')
    await r.subscribeAsync(`user/${reader}/inbox`, { qos: 1 })
    const clients: MqttClient[] = []
    for (const u of users) {
      const c = await connectUser(t, node, u, 'phone', { clean: false, reconnectPeriod: 20, reconnectOnConnackError: true })
      await c.subscribeAsync(`user/${u}/inbox`, { qos: 1 })
      clients.push(c)
    }
    let closes = 0
    for (const c of clients) c.on('close', () => { closes++ })
    const poisoner = clients[POISON_AT] as MqttClient
    const refused = collect<Msg>(poisoner, 1, (_t, m) => m.t === 'error')
    const delivered = collect<Msg>(r, SENDERS - 1, (_t, m) => m.t === 'event')

    // Hold the store so that every send queues up and they commit as one batch: the
    // first send's batch waits behind this transaction, the others gather behind it.
    let release!: () => void
    const held = new Promise<void>(resolve => { release = resolve })
    t.teardown(() => release()) // a failed wait below must not leave the store held
    let locked!: () => void
    const lockTaken = new Promise<void>(resolve => { locked = resolve })
    const holding = node.store.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE', [conv])
      locked()
      await held
    })
    // publishing before the lock is taken would let the first send commit on its own
    await lockTaken
    const acks = clients.map((c, i) => c.publishAsync(`conv/${conv}/send`, text(`m${i}`, i === POISON_AT ? 'poison' : `hello from ${i}`), { qos: 1 }))
    await waitFor(() => node.sends.pending >= SENDERS, 'the sends to queue behind the held store')
    release()
    await holding
    await Promise.all(acks) // every send was PUBACKed, the refused one included

    const [err] = await refused
    t.match(err, { code: 'bad_request', client_msg_id: `m${POISON_AT}`, message: /store cannot hold/ }, 'the poisoned send is refused, naming it')
    const events = await delivered
    t.same(events.map(e => e.text).sort(), users.map((_, i) => `hello from ${i}`).filter((_, i) => i !== POISON_AT).sort(), 'every other send of the batch was stored and delivered')
    t.same(events.map(e => e.seq), Array.from({ length: SENDERS - 1 }, (_, i) => i + 1), 'gapless seqs: the refused send consumed none')
    t.equal(closes, 0, 'nobody was disconnected')
    const rows = await node.store.query<{ n: number }>('SELECT count(*)::int AS n FROM events')
    t.equal(rows[0]?.n, SENDERS - 1)

    const http = await node.app.inject({
      method: 'POST',
      url: `/v1/conversations/${conv}/messages`,
      headers: { authorization: `Bearer ${token(node, users[0] as string)}` },
      payload: { client_msg_id: 'h1', type: 'text', text: 'poison' }
    })
    t.equal(http.statusCode, 400, 'over HTTP the store\'s refusal is a 400, not a 503 "retry"')
    t.equal(http.json().code, 'bad_request')
  })
}
