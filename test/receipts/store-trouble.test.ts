// Receipts when PostgreSQL is in trouble. Down: what waits is kept, merged by max, and
// written when the store is back (markers are max-wins, so a late write is never wrong);
// the connection stays up. Slow (rows locked): receipt writes hold at most a couple of
// the pool's connections, so sends of other conversations keep committing.
import t from 'tap'
import pg from 'pg'
import { connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { sendText } from '../helpers/access.js'
import { createDatabase } from '../helpers/pg-database.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { withTimeout, waitFor } from '../helpers/wait.js'
import { publishReceipt, receiptStats, receiptsOn, receiptsSettled, storedMarkers } from './helpers.js'

t.test('store down: receipts are kept and merged, written once it is back; the connection stays up', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const url = new URL(db.url)
  const proxy = await startTcpProxy(t, { host: url.hostname, port: Number(url.port) })
  const node = await startNode(t, { databaseUrl: proxy.urlFor(db.url), env: { THREADLINE_RECEIPT_WINDOW_MS: '50' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  await a.subscribeAsync(`conv/${conv}/receipts`, { qos: 0 })
  const summaries = receiptsOn(a, `conv/${conv}/receipts`)
  await sendText(a, conv, 'm1')
  await sendText(a, conv, 'm2')
  const b = await connectUser(t, node, bob, 'phone')

  proxy.cut()
  await publishReceipt(b, conv, 'read', 1)
  await waitFor(() => receiptStats(node).failedWrites >= 2, 'the write to fail and be tried again')
  await publishReceipt(b, conv, 'delivered', 2)
  t.equal(summaries.length, 0, 'nothing was stored, so no summary')
  t.match(receiptStats(node), { dropped: 0 })
  t.ok(receiptStats(node).pending >= 1, 'the markers wait')
  const http = await node.app.inject({
    method: 'POST', url: `/v1/conversations/${conv}/receipts`, headers: { authorization: `Bearer ${token(node, bob)}` }, payload: { status: 'read', seq: 2 }
  })
  t.match({ status: http.statusCode, body: http.json() }, { status: 503, body: { code: 'unavailable' } }, 'HTTP can\'t check the receipt: 503')
  t.ok(b.connected, 'the MQTT connection is up')

  proxy.restore()
  await receiptsSettled(node, 20_000)
  await waitFor(() => summaries.length > 0, 'the summary once written')
  t.same(summaries.at(-1)?.markers, [{ user_id: bob, delivered_seq: 2, read_seq: 1 }], 'both receipts, merged, in one write')
  const direct = new pg.Client({ connectionString: db.url })
  await direct.connect()
  t.teardown(() => direct.end())
  const { rows } = await direct.query('SELECT delivered_seq::int, read_seq::int FROM members WHERE conv_id = $1 AND user_id = $2', [conv, bob])
  t.same(rows, [{ delivered_seq: 2, read_seq: 1 }])
})

t.test('store slow: receipt writes waiting on locked rows hold two connections; sends elsewhere still commit', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_RECEIPT_WINDOW_MS: '10' } })
  const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
  const convs = await Promise.all(Array.from({ length: 20 }, () => createConversation(node, [alice, bob, carol])))
  const other = await createConversation(node, [alice, carol])
  const a = await connectUser(t, node, alice, 'phone')
  for (const conv of convs) await sendText(a, conv, `in ${conv}`)
  const b = await connectUser(t, node, bob, 'phone')

  const locker = new pg.Client({ connectionString: node.config.databaseUrl as string })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN')
  await locker.query('SELECT 1 FROM members WHERE user_id = $1 FOR UPDATE', [bob])
  for (const conv of convs) await publishReceipt(b, conv, 'read', 1)
  const lockWaits = async (): Promise<number> => {
    const { rows } = await locker.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    return rows[0]?.n ?? 0
  }
  await waitFor(async () => (await lockWaits()) === 2, 'two receipt writes to wait on the locked rows')
  // the receipts reach the writer one window after their seq check: on a busy machine the
  // last ones may still be on their way when the first two writes are already waiting
  await waitFor(() => receiptStats(node).writing === convs.length, 'every conversation to have its write under way')
  t.equal(await lockWaits(), 2, 'every conversation has its write under way, and still only two wait on the store')

  const c = await connectUser(t, node, carol, 'phone')
  await withTimeout(sendText(c, other, 'not held up'), 'a send of another conversation to commit', 3000)
  t.equal(await lockWaits(), 2, 'still only two connections held by receipts')

  await locker.query('ROLLBACK')
  await receiptsSettled(node)
  const stored = await Promise.all(convs.map(conv => storedMarkers(node.store, conv, bob)))
  t.same(stored, convs.map(() => ({ delivered_seq: 1, read_seq: 1 })), 'then every write goes through')
})
