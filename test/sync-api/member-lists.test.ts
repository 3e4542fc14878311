// Lists of users in REST bodies (DESIGN.md §6): bounded by the schema before anything
// touches the store, and creating their rows never deadlocks concurrent requests.
import t from 'tap'
import { loadConfig } from '../../broker/config.js'
const MAX_USERS_PER_REQUEST = 100_000
import pg from 'pg'
import { createLogger } from '../../broker/logger.js'
import { migrate } from '../../broker/store/migrations.js'
import { openPgStore } from '../../broker/store/pg-driver.js'
import { createDatabase } from '../helpers/pg-database.js'
import { forEachStore } from '../helpers/stores.js'
import { buildTestApi } from '../helpers/sync-api.js'
import { waitFor, withTimeout } from '../helpers/wait.js'

const CONV = '00000000-0000-4000-8000-000000000000'
const users = (n: number, prefix = 'u'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

t.test('the schema bound is the largest group THREADLINE_MAX_GROUP_MEMBERS allows', async (t) => {
  t.equal(loadConfig({ THREADLINE_MAX_GROUP_MEMBERS: String(MAX_USERS_PER_REQUEST) }).maxGroupMembers, MAX_USERS_PER_REQUEST)
  t.throws(() => loadConfig({ THREADLINE_MAX_GROUP_MEMBERS: String(MAX_USERS_PER_REQUEST + 1) }), /THREADLINE_MAX_GROUP_MEMBERS/)
})

t.test('member arrays over the bound are refused by the schema, before the store', t => forEachStore(t, async (t, store) => {
  // a payload limit raised far enough that only the array bound stands in the way
  const api = await buildTestApi(t, store, { config: { maxPayloadBytes: 64 * 1024 * 1024 } })
  const huge = users(MAX_USERS_PER_REQUEST + 1)
  const started = Date.now()
  const create = await api.call('ann', { method: 'POST', url: '/v1/conversations', payload: { type: 'group', title: 'g', members: huge } })
  t.equal(create.statusCode, 400)
  t.match(create.json(), { code: 'bad_request', message: new RegExp(`^body\\.members .*${MAX_USERS_PER_REQUEST}`) })
  // ann is in no conversation: a body that reached the service would answer not_member
  const add = await api.call('ann', { method: 'POST', url: `/v1/conversations/${CONV}/members`, payload: { user_ids: huge } })
  t.equal(add.statusCode, 400)
  t.match(add.json(), { code: 'bad_request', message: new RegExp(`^body\\.user_ids .*${MAX_USERS_PER_REQUEST}`) })
  const elapsed = Date.now() - started
  t.ok(elapsed < 10_000, `answered in ${elapsed} ms`)
  const rows = await store.query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE id LIKE 'u%'")
  t.same(rows, [{ n: 0 }], 'no named user got a row')
}))

t.test('concurrent group creations naming the same new users in opposite orders both succeed', async (t) => {
  if (process.env.DATABASE_URL === undefined) return t.fail('needs PostgreSQL: run with npm test')
  // real PostgreSQL: PGlite has one connection, so its transactions never overlap
  const db = await createDatabase()
  const store = await openPgStore(db.url, createLogger('silent'))
  const gate = new pg.Client({ connectionString: db.url })
  await gate.connect()
  t.teardown(async () => {
    await gate.end()
    await store.close()
    await db.drop()
  })
  await migrate(store)
  const api = await buildTestApi(t, store)
  // The gate holds the middle row, so each creation stops there, its first row inserted.
  // Released, they meet: in request order one holds a and wants z while the other holds
  // z and wants a (a deadlock: one of them fails); in sorted order the second one merely
  // waits for the first.
  await gate.query('BEGIN')
  await gate.query("INSERT INTO users (id, display_name) VALUES ('m-user', 'gate')")
  const answers = Promise.all([
    api.call('ann', { method: 'POST', url: '/v1/conversations', payload: { type: 'group', title: 'up', members: ['a-user', 'm-user', 'z-user'] } }),
    api.call('ben', { method: 'POST', url: '/v1/conversations', payload: { type: 'group', title: 'down', members: ['z-user', 'm-user', 'a-user'] } })
  ])
  // asked outside the gate's transaction: inside it, pg_stat_activity is a snapshot
  await waitFor(async () => (await store.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))[0]?.n === 2,
  'both creations to wait on a row lock')
  await gate.query('ROLLBACK')
  const [up, down] = await withTimeout(answers, 'both creations to answer')
  t.same([up.statusCode, down.statusCode], [201, 201], `${up.body.slice(0, 120)} | ${down.body.slice(0, 120)}`)
  const rows = await store.query<{ id: string }>("SELECT id FROM users WHERE id LIKE '_-user' ORDER BY id")
  t.same(rows.map(r => r.id), ['a-user', 'm-user', 'z-user'])
})
