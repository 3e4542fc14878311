// Self-test of the test infrastructure: test/run.ts must hand every test file a live
// PostgreSQL and Redis through DATABASE_URL and REDIS_URL.
import t from 'tap'
import pg from 'pg'
import { ping } from './redis.js'

t.test('PostgreSQL answers at DATABASE_URL', async t => {
  const url = process.env.DATABASE_URL
  if (!url) return t.fail('DATABASE_URL is not set (run the suite with `npm test`)')
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  await client.connect()
  t.teardown(() => client.end())
  const { rows } = await client.query<{ one: number }>('SELECT 1 AS one')
  t.same(rows, [{ one: 1 }])
})

t.test('Redis answers PING at REDIS_URL', async t => {
  const url = process.env.REDIS_URL
  if (!url) return t.fail('REDIS_URL is not set (run the suite with `npm test`)')
  const { hostname, port } = new URL(url)
  t.ok(await ping(hostname, Number(port || 6379), 5000), `PING ${url} → +PONG`)
})
