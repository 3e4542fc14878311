// Long-poll in a cluster: the queue lives in Redis, so a client's polls may land on any
// node (a load balancer without stickiness) and still see every event exactly once. A
// poll held on one node is woken by an event another node appends (Redis pub/sub).
//
// What the queue keeps is the order its events were appended in: one node appends a
// conversation's events in seq order, so a conversation sent into from one node arrives
// in seq order; sent into from two nodes at once, arrival may differ from seq (as over
// MQTT, test/cluster/concurrent-senders.test.ts) and clients order by seq.
import t, { type Test } from 'tap'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { LONGPOLL_STATS } from '../../core/longpoll/stats.js'
import { startCluster } from '../helpers/cluster.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { LongPollClient, type PollAnswer } from '../helpers/longpoll.js'
import { connectUser } from '../helpers/node.js'
import { waitFor } from '../helpers/wait.js'

type Event = PollAnswer['events'][number] & { conv_id?: string, seq?: number, client_msg_id?: string }

const N = 40
const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, k) => from + k)

/** n sends from one device, `window` unacknowledged at most: they commit in several batches while polls go on. */
async function sendAll (client: MqttClient, conv: string, prefix: string, n: number, window = 5): Promise<void> {
  for (let i = 1; i <= n; i += window) {
    const acks = []
    for (let k = i; k < i + window && k <= n; k++) acks.push(client.publishAsync(`conv/${conv}/send`, text(`${prefix}${k}`, `${prefix} ${k}`), { qos: 1 }))
    await Promise.all(acks)
  }
}

/**
 * Polls `lp` on A and B in turn until `n` events arrived. Every third answer is "lost" (the
 * client never read it): the same poll goes to the other node and must begin with the
 * same events. `lost` counts the lost answers that carried events.
 */
async function alternate (t: Test, lp: LongPollClient, nodes: readonly Threadline[], n: number): Promise<{ events: Event[], polls: number, lost: number }> {
  const events: Event[] = []
  let polls = 0
  let lost = 0
  const deadline = Date.now() + 30_000
  while (events.length < n) {
    if (Date.now() > deadline) throw new Error(`${events.length} of ${n} events after 30 s of polling`)
    lp.node = nodes[polls++ % nodes.length] as Threadline
    if (polls % 3 === 0) {
      const first = await lp.request(5)
      lp.node = nodes[polls++ % nodes.length] as Threadline
      const again = await lp.request(5)
      t.equal(again.status, 200)
      t.same(again.body.events.slice(0, first.body.events.length), first.body.events, `poll ${polls}, repeated on the other node, gives what the lost one gave`)
      if (first.body.events.length > 0) lost++
      events.push(...again.body.events as Event[])
      lp.lastEventId = again.body.last_event_id
    } else {
      events.push(...await lp.poll(5) as Event[])
    }
  }
  return { events, polls, lost }
}

t.test('polls alternating between two nodes get every event exactly once', async (t) => {
  const { nodes } = await startCluster(t, 2, { THREADLINE_SEND_RATE: '100000', THREADLINE_SEND_BURST: '100000' })
  const [a, b] = nodes as [Threadline, Threadline]
  const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
  const direct = await createConversation(a, [alice, bob])
  const group = await createConversation(a, [alice, bob, carol], 'group')
  const both = await createConversation(a, [alice, bob, carol], 'group')
  const alicePhone = await connectUser(t, a, alice, 'phone')
  const aliceLaptop = await connectUser(t, b, alice, 'laptop')

  const lp = new LongPollClient(a, bob)
  await lp.open({ device: 'browser' })
  const total = 4 * N
  const polling = alternate(t, lp, nodes, total)
  // the direct conversation from A, the group from B, and the third from both nodes at once
  await Promise.all([
    sendAll(alicePhone, direct, 'a', N),
    sendAll(aliceLaptop, group, 'b', N),
    sendAll(alicePhone, both, 'x', N),
    sendAll(aliceLaptop, both, 'y', N)
  ])
  const { events, polls, lost } = await polling
  t.ok(lost > 0, `${polls} polls; ${lost} answers with events lost, and the polls repeated on the other node`)

  t.same(events.map(e => e.event_id), range(1, total), `event ids 1..${total}: none skipped, none twice`)
  t.ok(events.every(e => e.t === 'event'), 'all of them the events alice sent')
  const of = (conv: string): Event[] => events.filter(e => e.conv_id === conv)
  t.same(of(direct).map(e => e.seq), range(1, N), 'the direct conversation (sent from A): seqs 1..N in arrival order')
  t.same(of(direct).map(e => e.client_msg_id), range(1, N).map(k => `a${k}`))
  t.same(of(group).map(e => e.seq), range(1, N), 'the group (sent from B): seqs 1..N in arrival order')
  t.same(of(group).map(e => e.client_msg_id), range(1, N).map(k => `b${k}`))
  const mixed = of(both)
  t.same(mixed.map(e => e.seq).sort((x, y) => (x as number) - (y as number)), range(1, 2 * N), 'sent from both nodes: seqs 1..2N, each once')
  for (const [prefix, where] of [['x', 'A'], ['y', 'B']] as const) {
    const own = mixed.filter(e => e.client_msg_id?.startsWith(prefix))
    t.same(own.map(e => e.client_msg_id), range(1, N).map(k => `${prefix}${k}`), `… what was sent from ${where} in its publish order`)
  }
  t.same(await lp.poll(0), [], 'nothing more, on either node')
  lp.node = a
  t.same(await lp.poll(0), [])
})

t.test('a poll held on B is woken by an event appended on A', async (t) => {
  const { nodes } = await startCluster(t)
  const [a, b] = nodes as [Threadline, Threadline]
  const [alice, carol] = [userId('alice'), userId('carol')]
  const conv = await createConversation(a, [alice, carol])
  const alicePhone = await connectUser(t, a, alice, 'phone')
  const lp = new LongPollClient(b, carol)
  await lp.open()

  const started = Date.now()
  const held = lp.request(60)
  // B counts carol's device as polling once its poll has read the queue (empty) and waits
  const stats = b.services.get(LONGPOLL_STATS)
  await waitFor(async () => (await stats()).devices === 1, 'carol\'s poll held on B')
  t.equal((await a.services.get(LONGPOLL_STATS)()).held, 0, 'A holds no poll')
  await alicePhone.publishAsync(`conv/${conv}/send`, text('m1', 'wake up'), { qos: 1 })
  const answer = await held
  const ms = Date.now() - started
  t.equal(answer.status, 200)
  t.match(answer.body, { events: [{ event_id: 1, t: 'event', conv_id: conv, seq: 1, client_msg_id: 'm1' }], last_event_id: 1 })
  t.ok(ms < 10_000, `answered ${ms} ms after it began, not at its 60 s timeout`)
})
