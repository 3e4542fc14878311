// A statement the pg driver gives up on must end on the server too: the client-side
// query_timeout only drops the socket, and PostgreSQL would go on running the statement
// and holding its row locks (every send of that conversation waits on its row).
import t from 'tap'
import pg from 'pg'
import { createLogger } from '../../broker/logger.js'
import { openPgStore, statementTimeoutMs } from '../../broker/store/pg-driver.js'
import { StoreUnavailableError } from '../../broker/store/index.js'
import { createDatabase } from '../helpers/pg-database.js'

const QUERY_TIMEOUT_MS = 1500

t.test('the server-side statement_timeout sits a bit below the client-side query_timeout', async (t) => {
  t.equal(statementTimeoutMs('postgres://h/db'), 9000)
  t.equal(statementTimeoutMs('postgres://h/db?query_timeout=1500'), 1200)
  t.equal(statementTimeoutMs('postgres://h/db?query_timeout=60000'), 59_000)
})

t.test('a statement that runs too long is cancelled on the server and its row lock released', async (t) => {
  if (process.env.DATABASE_URL === undefined) return t.fail('needs PostgreSQL: run with npm test')
  const db = await createDatabase()
  const url = new URL(db.url)
  url.searchParams.set('query_timeout', String(QUERY_TIMEOUT_MS))
  const store = await openPgStore(url.toString(), createLogger('silent'))
  const admin = new pg.Client({ connectionString: db.url })
  await admin.connect()
  t.teardown(async () => {
    await admin.end()
    await store.close()
    await db.drop()
  })
  await store.query('CREATE TABLE locked (id int PRIMARY KEY, v int)')
  await store.query('INSERT INTO locked VALUES (1, 0)')

  const started = Date.now()
  const slow = store.transaction(async (tx) => {
    await tx.query('SELECT v FROM locked WHERE id = 1 FOR UPDATE')
    await tx.query('SELECT pg_sleep(60) /* threadline-slow */')
  })
  await t.rejects(slow, StoreUnavailableError, 'the caller sees the store as unavailable')
  t.ok(Date.now() - started < QUERY_TIMEOUT_MS + 2000, `gave up after ${Date.now() - started} ms`)

  // another transaction gets the row; on the old driver it waited out the whole pg_sleep
  await admin.query("SET statement_timeout = '5s'")
  const updated = await admin.query('UPDATE locked SET v = v + 1 WHERE id = 1')
  t.equal(updated.rowCount, 1, 'the row lock was released')
  const running = await admin.query("SELECT pid FROM pg_stat_activity WHERE query LIKE '%threadline-slow%' AND state = 'active' AND pid <> pg_backend_pid()")
  t.same(running.rows, [], 'the statement no longer runs on the server')
})
