// DESIGN.md §4 "Ordered": seqs are assigned in the store's transaction, "so order holds
// across broker nodes". Senders on two nodes write into one conversation at once.
//
// What a device may rely on is seq, not arrival: an event committed on B and one
// committed next on A travel to Redis on two different connections, so their arrival
// order can differ from device to device. Each sender's own events do arrive in order
// (one node publishes them in commit order on one connection), and ordered by seq every
// device must hold the very same history.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { startCluster } from '../helpers/cluster.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { collect, connectUser } from '../helpers/node.js'

interface Envelope { t: string, conv_id: string, seq: number, sender_id: string, client_msg_id: string }

const PER_SENDER = 150
const BURST = 5

t.test('senders on both nodes at once: gapless seqs, and every device on both nodes holds the same history', async (t) => {
  // a rate limiter (if one is registered) must not turn this into a rate-limit test
  const { nodes: [a, b] } = await startCluster(t, 2, { THREADLINE_SEND_RATE: '100000', THREADLINE_SEND_BURST: '100000' })
  if (a === undefined || b === undefined) throw new Error('cluster did not start')
  const [alice, bob, carol, dave] = [userId('alice'), userId('bob'), userId('carol'), userId('dave')]
  const conv = await createConversation(a, [alice, bob, carol, dave], 'group')

  // two senders per node, and carol with a device on each node
  const senders = [
    { user: alice, client: await connectUser(t, a, alice, 'phone') },
    { user: bob, client: await connectUser(t, b, bob, 'phone') },
    { user: dave, client: await connectUser(t, a, dave, 'phone') },
    { user: carol, client: await connectUser(t, b, carol, 'tablet') }
  ]
  const watchers: Array<{ name: string, user: string, client: MqttClient }> = [
    ...senders.map(s => ({ name: `${s.client.options.clientId ?? ''}`, user: s.user, client: s.client })),
    { name: 'carol on A', user: carol, client: await connectUser(t, a, carol, 'laptop') }
  ]
  for (const w of watchers) await w.client.subscribeAsync(`user/${w.user}/inbox`, { qos: 1 })
  // and an integrator-style follower of the conversation topic on each node
  const followers = [await connectUser(t, a, carol, 'events-a'), await connectUser(t, b, carol, 'events-b')]
  for (const f of followers) await f.subscribeAsync(`conv/${conv}/events`, { qos: 1 })

  const total = PER_SENDER * senders.length
  const isOurs = (topic: string, m: Envelope): boolean => m.t === 'event' && m.conv_id === conv
  const arrivals = [
    ...watchers.map(w => ({ name: w.name, got: collect<Envelope>(w.client, total, isOurs) })),
    ...followers.map((f, i) => ({ name: `conv/<c>/events follower on ${i === 0 ? 'A' : 'B'}`, got: collect<Envelope>(f, total, isOurs) }))
  ]

  // every sender sends bursts of BURST back to back, the next burst once the last is
  // acknowledged: small group commits on both nodes, contending for the conversation
  await Promise.all(senders.map(async (s) => {
    for (let i = 1; i <= PER_SENDER; i += BURST) {
      const acks = []
      for (let k = i; k < i + BURST && k <= PER_SENDER; k++) {
        acks.push(s.client.publishAsync(`conv/${conv}/send`, text(`${s.user}#${k}`, `${k}`), { qos: 1 }))
      }
      await Promise.all(acks)
    }
  }))
  t.pass(`all ${total} sends acknowledged`)

  const histories = await Promise.all(arrivals.map(async a => ({ name: a.name, got: await a.got })))
  const reference = [...(histories[0]?.got ?? [])].sort((x, y) => x.seq - y.seq).map(e => `${e.seq} ${e.client_msg_id}`)
  t.same(reference.map(r => Number(r.split(' ')[0])), Array.from({ length: total }, (_, k) => k + 1), `seqs 1..${total}, no gap, none twice`)

  const onA = new Set([alice, dave])
  const sorted = [...(histories[0]?.got ?? [])].sort((x, y) => x.seq - y.seq)
  const switches = sorted.filter((e, k) => k > 0 && onA.has(e.sender_id) !== onA.has((sorted[k - 1] as Envelope).sender_id)).length
  t.ok(switches > 0, `the nodes' commits interleaved (${switches} switches between A's and B's senders in seq order)`)
  for (const { name, got } of histories) {
    const outOfOrder = got.filter((e, k) => k > 0 && e.seq < (got[k - 1] as Envelope).seq).length
    t.comment(`${name}: ${outOfOrder} of ${total} events arrived after a higher seq (allowed: clients order by seq)`)
    const bySeq = [...got].sort((x, y) => x.seq - y.seq).map(e => `${e.seq} ${e.client_msg_id}`)
    t.same(bySeq, reference, `${name}: the same ${total} events under the same seqs`)
    for (const s of senders) {
      const own = got.filter(e => e.sender_id === s.user)
      t.same(own.map(e => e.client_msg_id), Array.from({ length: PER_SENDER }, (_, k) => `${s.user}#${k + 1}`),
        `${name}: ${s.user}'s events arrive in ${s.user}'s publish order`)
      t.ok(own.every((e, k) => k === 0 || e.seq > (own[k - 1] as Envelope).seq), `${name}: … and with rising seqs`)
    }
  }

  const stored = await b.store.query<{ seq: number, client_msg_id: string }>(
    'SELECT seq, client_msg_id FROM events WHERE conv_id = $1 ORDER BY seq', [conv])
  t.same(stored.map(r => `${r.seq} ${r.client_msg_id}`), reference, 'the store holds exactly that history')
  const last = await a.store.query<{ last_seq: number }>('SELECT last_seq FROM conversations WHERE id = $1', [conv])
  t.equal(last[0]?.last_seq, total, 'last_seq agrees')
})
