// DESIGN.md §7: "Several nodes with the same DATABASE_URL + REDIS_URL form one cluster:
// a client on node A talks to a client on node B."
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { startCluster } from '../helpers/cluster.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { collect, connectUser } from '../helpers/node.js'

interface Envelope { t: string, conv_id: string, seq: number, sender_id: string, client_msg_id: string, type: string, text?: string }

const N = 50
const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, k) => from + k)

/** Publishes n sends back to back on one connection; resolves when every PUBACK is in. */
async function sendAll (client: MqttClient, conv: string, prefix: string, n: number): Promise<void> {
  const acks = []
  for (let i = 1; i <= n; i++) acks.push(client.publishAsync(`conv/${conv}/send`, text(`${prefix}${i}`, `${prefix} ${i}`), { qos: 1 }))
  await Promise.all(acks)
}

t.test('sends on one node reach devices on both nodes, in seq order, both ways', async (t) => {
  const { nodes: [a, b] } = await startCluster(t)
  if (a === undefined || b === undefined) throw new Error('cluster did not start')
  const alice = userId('alice')
  const bob = userId('bob')
  const conv = await createConversation(a, [alice, bob])

  // alice has two devices on A, bob one on B
  const alicePhone = await connectUser(t, a, alice, 'phone')
  const aliceLaptop = await connectUser(t, a, alice, 'laptop')
  const bobPhone = await connectUser(t, b, bob, 'phone')
  for (const [client, user] of [[alicePhone, alice], [aliceLaptop, alice], [bobPhone, bob]] as const) {
    const granted = await client.subscribeAsync(`user/${user}/inbox`, { qos: 1 })
    t.equal(granted[0]?.qos, 1, `${client.options.clientId}: inbox granted`)
  }
  const events = (c: MqttClient, user: string, n: number): Promise<Envelope[]> =>
    collect<Envelope>(c, n, (topic, m) => topic === `user/${user}/inbox` && m.t === 'event' && m.conv_id === conv)

  t.test('A → B: alice on A sends, bob on B and alice\'s laptop on A receive', async (t) => {
    const atBob = events(bobPhone, bob, N)
    const atLaptop = events(aliceLaptop, alice, N)
    await sendAll(alicePhone, conv, 'a', N)
    for (const [name, got] of [['bob on B', await atBob], ['alice\'s laptop on A', await atLaptop]] as const) {
      t.same(got.map(e => e.seq), range(1, N), `${name}: seqs 1..${N} in arrival order`)
      t.same(got.map(e => e.client_msg_id), range(1, N).map(i => `a${i}`), `${name}: alice's publish order`)
      t.ok(got.every(e => e.sender_id === alice && e.type === 'text'), `${name}: stamped with alice as sender`)
    }
  })

  t.test('B → A: bob on B sends, both of alice\'s devices on A receive', async (t) => {
    const atPhone = events(alicePhone, alice, N)
    const atLaptop = events(aliceLaptop, alice, N)
    const own = events(bobPhone, bob, N)
    await sendAll(bobPhone, conv, 'b', N)
    for (const [name, got] of [['alice\'s phone on A', await atPhone], ['alice\'s laptop on A', await atLaptop], ['bob\'s own inbox on B', await own]] as const) {
      t.same(got.map(e => e.seq), range(N + 1, N), `${name}: seqs ${N + 1}..${2 * N} in arrival order`)
      t.same(got.map(e => e.client_msg_id), range(1, N).map(i => `b${i}`), `${name}: bob's publish order`)
      t.ok(got.every(e => e.sender_id === bob), `${name}: stamped with bob as sender`)
    }
    const stored = await b.store.query<{ n: number, first: number, last: number }>(
      'SELECT count(*)::int AS n, min(seq)::int AS first, max(seq)::int AS last FROM events WHERE conv_id = $1', [conv])
    t.same(stored[0], { n: 2 * N, first: 1, last: 2 * N }, 'one shared store: gapless seqs across both nodes')
  })
})
