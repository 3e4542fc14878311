// Lists of users in REST bodies (DESIGN.md §6): bounded by the schema before anything
// touches the store, and creating their rows never deadlocks concurrent requests.
import t from 'tap'
import { loadConfig } from '../../broker/config.js'
const MAX_USERS_PER_REQUEST = 100_000
import { forEachStore, openTestStore } from '../helpers/stores.js'
import { buildTestApi } from '../helpers/sync-api.js'

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

t.test('concurrent group creations naming the same new users in opposite orders all succeed', async (t) => {
  if (process.env.DATABASE_URL === undefined) return t.fail('needs PostgreSQL: run with npm test')
  // real PostgreSQL: PGlite has one connection, so its transactions never overlap
  const store = await openTestStore(t, 'pg')
  // big groups, so that the two INSERTs take long enough to overlap every time
  const api = await buildTestApi(t, store, { config: { maxGroupMembers: 10_000 } })
  for (let round = 0; round < 3; round++) {
    const named = users(4000, `r${round}-`)
    const answers = await Promise.all([
      api.call('ann', { method: 'POST', url: '/v1/conversations', payload: { type: 'group', title: 'up', members: named } }),
      api.call('ben', { method: 'POST', url: '/v1/conversations', payload: { type: 'group', title: 'down', members: [...named].reverse() } })
    ])
    t.same(answers.map(a => a.statusCode), [201, 201], `round ${round}: ${answers.map(a => a.body.slice(0, 120)).join(' | ')}`)
  }
  const rows = await store.query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE id LIKE 'r%'")
  t.same(rows, [{ n: 12_000 }], 'each user has one row')
})
