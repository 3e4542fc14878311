// What /metrics shows while a part is away: PostgreSQL and Redis are taken from a running
// node by TCP proxies (test/helpers/tcp-proxy.ts), nothing is faked; the scrape itself
// keeps answering.
import t from 'tap'
import { startNode, token } from '../helpers/node.js'
import { userId } from '../helpers/fixtures.js'
import { scrape, untilScrape } from '../helpers/metrics.js'
import { createDatabase } from '../helpers/pg-database.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { redisBehindProxy } from '../helpers/cluster.js'

t.test('store errors count the queries that fail while PostgreSQL is unreachable; the pool is read at scrape', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const pg = new URL(db.url)
  const proxy = await startTcpProxy(t, { host: pg.hostname, port: Number(pg.port) })
  const node = await startNode(t, { databaseUrl: proxy.urlFor(db.url) })
  const bearer = token(node, userId('ann'))
  const list = (): Promise<number> => fetch(`http://127.0.0.1:${node.httpPort}/v1/conversations`, { headers: { authorization: `Bearer ${bearer}` } }).then(r => r.status)
  t.equal(await list(), 200)
  const before = await scrape(node)
  t.equal(before.value('threadline_store_errors_total', { kind: 'unavailable' }), 0, 'no error yet, the series there at 0')
  t.ok(before.value('threadline_store_pool_connections') >= 1, 'the pool holds a connection')
  t.equal(before.value('threadline_store_pool_waiting'), 0)

  proxy.cut()
  t.equal(await list(), 503, 'the store is away: unavailable')
  const during = await scrape(node)
  t.ok(during.value('threadline_store_errors_total', { kind: 'unavailable' }) >= 1, `counted as unavailable: ${during.value('threadline_store_errors_total', { kind: 'unavailable' })}`)
  t.equal(during.value('threadline_store_errors_total', { kind: 'fault' }), 0, 'not as a fault')

  proxy.restore()
  const counted = during.value('threadline_store_errors_total', { kind: 'unavailable' })
  t.equal(await list(), 200, 'back')
  t.equal((await scrape(node)).value('threadline_store_errors_total', { kind: 'unavailable' }), counted, 'a good query adds nothing')
})

t.test('redis_up goes 1 → 0 when Redis hangs or dies, and back to 1 when it answers again', async (t) => {
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const node = await startNode(t, { store: 'pglite', env: { REDIS_URL: proxy.urlFor(redisUrl), THREADLINE_REDIS_TIMEOUT_MS: '300' } })
  t.equal((await scrape(node)).value('threadline_redis_up'), 1, 'up')

  proxy.hang()
  const hung = await untilScrape(node, s => s.family('threadline_redis_up').metrics.length === 1 && s.value('threadline_redis_up') === 0, 'redis_up 0 while Redis hangs')
  t.equal(hung.value('threadline_redis_up'), 0, 'a hang: down')
  proxy.resume()
  await untilScrape(node, s => s.value('threadline_redis_up') === 1, 'redis_up 1 once Redis answers')
  t.pass('back up after the hang')

  proxy.cut()
  await untilScrape(node, s => s.family('threadline_redis_up').metrics.length === 1 && s.value('threadline_redis_up') === 0, 'redis_up 0 while Redis refuses')
  t.pass('a dead Redis: down')
  proxy.restore()
  await untilScrape(node, s => s.value('threadline_redis_up') === 1, 'redis_up 1 once Redis is back', 20_000)
  t.pass('back up after the outage')
})
