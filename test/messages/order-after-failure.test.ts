// DESIGN.md §4 "Ordered": one sender's events keep that sender's publish order, also
// when a commit fails. A batch that fails `unavailable` is not PUBACKed and its client is
// disconnected to resend it; a later send of the same client, already queued behind the
// failed batch, must not commit first (seen before the fix: a2 seq 1, a1 seq 2).
import t from 'tap'
import { UNLIMITED_SENDS, collect, connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/wait.js'

interface Msg { t: string, seq?: number, client_msg_id?: string, conv_id?: string }

// A client's packets can only be split across two batches where one batch ends (500
// sends): Aedes reads a socket again only once every packet of the last read is answered.
// So 499 HTTP sends to the same conversation are queued ahead of alice's a1 + a2 (one
// socket read), which puts a1 last in one batch and a2 in the next. Batches of one
// conversation run one after another even where batches of different ones run
// concurrently, so the fillers queue behind a first batch of that conversation, and each
// batch is made to fail by killing its PostgreSQL backend while it waits on a row lock
// this test holds.
const BATCH = 500

t.test('after a failed batch, a client\'s queued sends do not overtake the failed one', async (t) => {
  const node = await startNode(t, { store: 'pg', env: UNLIMITED_SENDS })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const b = await connectUser(t, node, bob, 'phone')
  await b.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  const received = collect<Msg>(b, 2, (_t, m) => m.t === 'event' && m.conv_id === conv)
  // the session apps are told to use: persistent, resending what was not PUBACKed
  const a = await connectUser(t, node, alice, 'phone', { clean: false, reconnectPeriod: 20, reconnectOnConnackError: true })
  const reconnected = new Promise<void>(resolve => a.once('reconnect', () => resolve()))

  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const holding = node.store.transaction(async (tx) => {
    await tx.query('SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE', [conv])
    await held
  })
  const fillers = (n: number, from: number): Array<Promise<unknown>> => Array.from({ length: n }, (_, i) => node.app.inject({
    method: 'POST',
    url: `/v1/conversations/${conv}/messages`,
    headers: { authorization: `Bearer ${token(node, bob)}` },
    payload: { client_msg_id: `c${from + i}`, type: 'text', text: 'filler' }
  }))
  const http = fillers(1, 0) // batch 1: waits on the lock
  await waitFor(async () => await lockWaiters(node) === 1, 'batch 1 to wait on the held lock')
  http.push(...fillers(BATCH - 1, 1))
  await waitFor(async () => node.sends.pending === BATCH, 'the fillers to queue')
  // one socket read: a1 ends batch 2, a2 starts batch 3
  const acks = [a.publishAsync(`conv/${conv}/send`, text('a1', 'first'), { qos: 1 }), a.publishAsync(`conv/${conv}/send`, text('a2', 'second'), { qos: 1 })]
  for (const ack of acks) ack.catch(() => {}) // the reconnect settles them; what counts is what bob gets
  await waitFor(async () => node.sends.pending === BATCH + 2, 'a1 and a2 to queue')

  await terminateLockWaiters(node) // batch 1 fails
  await waitFor(async () => node.sends.pending === BATCH + 1 && await lockWaiters(node) === 1, 'batch 2 to wait on the held lock')
  await terminateLockWaiters(node) // batch 2, with a1, fails
  await waitFor(async () => node.sends.pending <= 1, 'batch 2 to be answered')
  release()
  await holding
  await Promise.all(http)

  await reconnected
  const events = await received
  t.same(events.map(e => [e.client_msg_id, e.seq]), [['a1', 1], ['a2', 2]], 'a1 keeps seq 1 and a2 follows it')
  const rows = await node.store.query<{ client_msg_id: string, seq: number }>('SELECT client_msg_id, seq FROM events WHERE conv_id = $1 ORDER BY seq', [conv])
  t.same(rows.map(r => [r.client_msg_id, r.seq]), [['a1', 1], ['a2', 2]], 'stored in the sender\'s order, once each')
})

type Node = Awaited<ReturnType<typeof startNode>>

async function lockWaiters (node: Node): Promise<number> {
  const rows = await node.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'`)
  return rows[0]?.n ?? 0
}

async function terminateLockWaiters (node: Node): Promise<void> {
  await node.store.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'`)
}
