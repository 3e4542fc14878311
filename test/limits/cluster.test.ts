// In a cluster the send limit is one bucket per user in Redis, whichever node the user's
// devices (or HTTP requests) use. When a node's Redis hangs, its checks give up after the
// Redis timeout and the node's own buckets decide: sends still commit, in bounded time.
import t from 'tap'
import { redisBehindProxy, startCluster } from '../helpers/cluster.js'
import { collect, connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { sendText } from '../helpers/access.js'
import { createDatabase } from '../helpers/pg-database.js'

t.test('two nodes on one Redis share a user\'s send bucket, over MQTT and HTTP', async (t) => {
  const { nodes: [a, b] } = await startCluster(t, 2, { THREADLINE_SEND_RATE: '1', THREADLINE_SEND_BURST: '3' })
  if (a === undefined || b === undefined) throw new Error('two nodes')
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(a, [alice, bob])
  const onA = await connectUser(t, a, alice, 'phone')
  const onB = await connectUser(t, b, alice, 'web')
  await onB.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  await sendText(onA, conv, 'a1')
  await sendText(onB, conv, 'b1')
  const res = await a.app.inject({
    method: 'POST',
    url: `/v1/conversations/${conv}/messages`,
    headers: { authorization: `Bearer ${token(a, alice)}` },
    payload: { client_msg_id: 'h1', type: 'text', text: 'third' }
  })
  t.equal(res.statusCode, 201)
  const refused = collect<{ t: string, code?: string, client_msg_id?: string }>(onB, 1, (_topic, m) => m.t === 'error')
  await onB.publishAsync(`conv/${conv}/send`, text('b2', 'fourth'), { qos: 1 })
  t.match((await refused)[0], { code: 'rate_limited', client_msg_id: 'b2' }, 'the fourth send, on the other node, is over the shared burst')
  const over = await b.app.inject({
    method: 'POST',
    url: `/v1/conversations/${conv}/messages`,
    headers: { authorization: `Bearer ${token(b, alice)}` },
    payload: { client_msg_id: 'h2', type: 'text', text: 'fifth' }
  })
  t.equal(over.statusCode, 429, 'and so is an HTTP send on it')
  const rows = await a.store.query<{ client_msg_id: string }>('SELECT client_msg_id FROM events WHERE conv_id = $1 ORDER BY seq', [conv])
  t.same(rows.map(r => r.client_msg_id), ['a1', 'b1', 'h1'])
})

t.test('a node whose Redis hangs keeps committing sends within the Redis timeout, limited by its own buckets', async (t) => {
  const TIMEOUT_MS = 300
  const db = await createDatabase()
  t.teardown(db.drop)
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const node = await startNode(t, {
    databaseUrl: db.url,
    env: { REDIS_URL: proxy.urlFor(redisUrl), THREADLINE_REDIS_TIMEOUT_MS: String(TIMEOUT_MS), THREADLINE_SEND_RATE: '1', THREADLINE_SEND_BURST: '4' }
  })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const phone = await connectUser(t, node, alice, 'phone')
  await phone.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  await sendText(phone, conv, 'before')

  proxy.hang()
  const times: number[] = []
  for (const id of ['h1', 'h2', 'h3']) {
    const started = Date.now()
    await sendText(phone, conv, id)
    times.push(Date.now() - started)
  }
  // the first check waits for the Redis timeout; then Redis is known down and the node's
  // memory answers at once (the send path around it has bounds of its own, see test/cluster/redis-hang.test.ts)
  t.ok(times.every(ms => ms < TIMEOUT_MS * 2 + 1500), `every send PUBACKed in bounded time (${times.join(', ')} ms)`)
  const refused = collect<{ t: string, code?: string }>(phone, 1, (_topic, m) => m.t === 'error')
  // the node's own bucket started full (4): 'h1'..'h3' and one more, then refused
  await sendText(phone, conv, 'h4')
  await phone.publishAsync(`conv/${conv}/send`, text('h5', 'over'), { qos: 1 })
  t.match((await refused)[0], { code: 'rate_limited' }, 'the node enforces the limit on its own meanwhile')
  const rows = await node.store.query<{ client_msg_id: string }>('SELECT client_msg_id FROM events WHERE conv_id = $1 ORDER BY seq', [conv])
  t.same(rows.map(r => r.client_msg_id), ['before', 'h1', 'h2', 'h3', 'h4'], 'every send within the limit is committed, the refused one is not')
  proxy.resume()
})
