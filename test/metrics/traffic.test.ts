import { randomUUID } from 'node:crypto'
import t from 'tap'
import { collect, connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, startDirectChat, text, userId } from '../helpers/fixtures.js'
import { nodeIdOf, scrape, untilScrape } from '../helpers/metrics.js'

const mqttSends = (result: string): Record<string, string> => ({ transport: 'mqtt', result })

t.test('a send moves sends{result="ok"}, the send latency histogram, commit batches and deliveries', async (t) => {
  const { node, conv, a, b } = await startDirectChat(t, { store: 'pglite' })
  const before = await scrape(node)
  t.equal(before.value('threadline_sends_total', mqttSends('ok')), 0, 'no send yet, and the series is there at 0')
  t.equal(before.family('threadline_sends_total').type, 'COUNTER')
  t.equal(before.family('threadline_send_duration_seconds').type, 'HISTOGRAM')

  const delivered = collect(b, 1)
  await a.publishAsync(`conv/${conv}/send`, text('m-1', 'hello'), { qos: 1 }) // resolves on PUBACK
  await delivered
  const after = await untilScrape(node, s => s.value('threadline_deliveries_total') >= 1, 'the delivery to bob counted')
  t.equal(after.value('threadline_sends_total', mqttSends('ok')), 1, 'one send stored')
  t.equal(after.count('threadline_send_duration_seconds', { transport: 'mqtt' }), 1, 'its PUBACK latency observed')
  const seconds = after.sum('threadline_send_duration_seconds', { transport: 'mqtt' })
  t.ok(seconds > 0 && seconds < 10, `in seconds: ${seconds}`)
  t.ok(after.count('threadline_commit_batch_size') >= 1, 'a commit batch')
  t.ok(after.count('threadline_commit_duration_seconds') >= 1, 'its duration')
  t.equal(after.bucket('threadline_commit_batch_size', '1'), 1, 'a batch of one send, in the le="1" bucket')
  t.equal(after.bucket('threadline_commit_batch_size', '+Inf'), after.count('threadline_commit_batch_size'), 'buckets are cumulative up to +Inf')
})

t.test('a duplicate, a bad_request and a not_member each move their own result, over MQTT and HTTP', async (t) => {
  const { node, alice, conv, a } = await startDirectChat(t, { store: 'pglite' })
  await a.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  const answers = collect(a, 4)
  await a.publishAsync(`conv/${conv}/send`, text('d-1', 'once'), { qos: 1 })
  await a.publishAsync(`conv/${conv}/send`, text('d-1', 'once'), { qos: 1 })
  await a.publishAsync(`conv/${conv}/send`, '{"not json', { qos: 1 })
  await a.publishAsync(`conv/${randomUUID()}/send`, text('d-2', 'nobody'), { qos: 1 })
  await answers
  const bearer = token(node, alice)
  const post = async (convId: string, body: unknown): Promise<number> => (await fetch(`http://127.0.0.1:${node.httpPort}/v1/conversations/${convId}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })).status
  t.equal(await post(conv, { client_msg_id: 'h-1', type: 'text', text: 'over http' }), 201)
  t.equal(await post(conv, { client_msg_id: 'h-1', type: 'text', text: 'over http' }), 200)
  t.equal(await post(conv, { client_msg_id: 'h-2', type: 'text', text: '' }), 400)
  t.equal(await post(randomUUID(), { client_msg_id: 'h-3', type: 'text', text: 'x' }), 403)

  const s = await scrape(node)
  for (const transport of ['mqtt', 'http']) {
    for (const result of ['ok', 'duplicate', 'bad_request', 'not_member']) {
      t.equal(s.value('threadline_sends_total', { transport, result }), 1, `${transport} ${result}: 1`)
    }
    t.equal(s.count('threadline_send_duration_seconds', { transport }), 4, `${transport}: every answer's latency observed`)
  }
  t.equal(s.value('threadline_sends_total', mqttSends('unavailable')), 0, 'nothing else')
})

t.test('deliveries grow with fan-out: one send to a group reaches every subscribed member', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  const members = [userId('ann'), userId('ben'), userId('cat'), userId('dan')]
  const conv = await createConversation(node, members)
  const clients = await Promise.all(members.map(async (m) => {
    const c = await connectUser(t, node, m, 'phone')
    await c.subscribeAsync(`user/${m}/inbox`, { qos: 1 })
    return c
  }))
  const before = (await scrape(node)).value('threadline_deliveries_total')
  const arrived = clients.map(c => collect(c, 1))
  await clients[0]?.publishAsync(`conv/${conv}/send`, text('g-1', 'to all'), { qos: 1 })
  await Promise.all(arrived)
  const after = await untilScrape(node, s => s.value('threadline_deliveries_total') >= before + 4, 'four deliveries counted')
  t.equal(after.value('threadline_deliveries_total') - before, 4, 'one per member inbox, the sender\'s included')
})

t.test('connections go up and down, by transport; persistent sessions count as connected, then away', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  const [ann, ben] = [userId('ann'), userId('ben')]
  const s0 = await scrape(node)
  t.equal(s0.value('threadline_connections', { transport: 'tcp' }), 0)
  t.equal(s0.value('threadline_connections', { transport: 'ws' }), 0)
  const tcp = await connectUser(t, node, ann, 'phone', { clean: false })
  const ws = await connectUser(t, node, ben, 'web', { ws: true })
  const s1 = await scrape(node)
  t.equal(s1.value('threadline_connections', { transport: 'tcp' }), 1, 'one over TCP')
  t.equal(s1.value('threadline_connections', { transport: 'ws' }), 1, 'one over WebSocket')
  t.equal(s1.value('threadline_sessions', { state: 'connected' }), 1, 'one persistent session connected')
  t.equal(s1.value('threadline_sessions', { state: 'away' }), 0)
  await tcp.endAsync()
  await ws.endAsync()
  const s2 = await untilScrape(node, s => s.value('threadline_connections', { transport: 'tcp' }) === 0 && s.value('threadline_connections', { transport: 'ws' }) === 0 &&
    s.value('threadline_sessions', { state: 'away' }) === 1, 'both gone, the persistent session away')
  t.equal(s2.value('threadline_sessions', { state: 'connected' }), 0)
})

t.test('every series carries the node label; Node\'s process and event-loop metrics are there', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: { THREADLINE_NODE_ID: 'node-a' } })
  t.equal(nodeIdOf(node), 'node-a')
  const s = await scrape(node)
  let samples = 0
  for (const family of s.series) {
    for (const m of family.metrics) {
      samples++
      if (m.labels?.node !== 'node-a') t.fail(`${family.name} ${JSON.stringify(m.labels)} has no node label`)
    }
  }
  t.ok(samples > 50, `${samples} samples, every one labelled node="node-a"`)
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'threadline_store_pool_connections', 'threadline_fanout_in_flight']) {
    t.ok(s.families.some(f => f.name === name), name)
  }
  t.same(s.family('threadline_redis_up').metrics, [], 'no Redis: redis_up has no sample')
})

t.test('two nodes in one process count only their own traffic', async (t) => {
  const a = await startDirectChat(t, { store: 'pglite', env: { THREADLINE_NODE_ID: 'one' } })
  const other = await startNode(t, { store: 'pglite', env: { THREADLINE_NODE_ID: 'two' } })
  await a.a.publishAsync(`conv/${a.conv}/send`, text('x-1', 'hi'), { qos: 1 })
  const [s1, s2] = await Promise.all([scrape(a.node), scrape(other)])
  t.equal(s1.value('threadline_sends_total', mqttSends('ok')), 1)
  t.equal(s2.value('threadline_sends_total', mqttSends('ok')), 0, 'the other node counted nothing')
  t.equal(s1.value('threadline_connections', { transport: 'tcp' }), 2)
  t.equal(s2.value('threadline_connections', { transport: 'tcp' }), 0)
  t.ok(s1.series.every(f => f.metrics.every(m => m.labels?.node === 'one')))
  t.ok(s2.series.every(f => f.metrics.every(m => m.labels?.node === 'two')))
  t.equal(s2.value('process_resident_memory_bytes') > 0, true, 'the process metrics, shared, under each node\'s label')
})

t.test('rate-limit and connection refusals told by the parts that refuse are counted by limit and by reason', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  // plugins/limits and the listeners emit these; the metrics count whatever arrives
  for (const limit of ['send', 'send', 'typing']) node.telemetry.emit('limited', { limit })
  node.telemetry.emit('connectionRefused', { reason: 'max_connections' })
  const s = await scrape(node)
  t.equal(s.value('threadline_rate_limited_total', { limit: 'send' }), 2)
  t.equal(s.value('threadline_rate_limited_total', { limit: 'typing' }), 1)
  t.equal(s.value('threadline_connections_refused_total', { reason: 'max_connections' }), 1)
  t.equal(s.family('threadline_rate_limited_total').type, 'COUNTER')
})
