// `npx tsx bench/unread.ts [--unread N] [--convs K] [--runs R] [--explain]`: what a user
// back after a long time costs the conversation list (GET /v1/conversations) and the push
// badge (totalUnread), on a throwaway PostgreSQL (test/services/postgres.ts, fsync on)
// and on PGlite. The reader has K conversations, each with N unread texts from another
// user (every 100th of them deleted, so the delete probes run too); the list is read R
// times through the real REST route (app.inject) after 3 warm-up reads.
import os from 'node:os'
import { parseArgs } from 'node:util'
import { createLogger } from '../broker/logger.js'
import { migrate } from '../broker/store/migrations.js'
import { openPgStore } from '../broker/store/pg-driver.js'
import { openPgliteStore } from '../broker/store/pglite-driver.js'
import type { Store } from '../broker/store/index.js'
import { totalUnread } from '../core/conversations/unread.js'
import type { Queryable } from '../core/store.js'
import { buildTestApi } from '../test/helpers/sync-api.js'
import { ensurePackages } from '../test/services/debian.js'
import { startPostgres } from '../test/services/postgres.js'
import type { Defer } from '../test/services/util.js'

const { values } = parseArgs({
  options: {
    unread: { type: 'string', default: '100000' },
    convs: { type: 'string', default: '1' },
    runs: { type: 'string', default: '30' },
    explain: { type: 'boolean', default: false }
  }
})
const UNREAD = Number(values.unread)
const CONVS = Number(values.convs)
const RUNS = Number(values.runs)
const READER = 'reader'

async function seed (store: Store): Promise<void> {
  await store.query("INSERT INTO users (id, display_name) VALUES ('reader', 'reader'), ('writer', 'writer')")
  await store.query(`INSERT INTO conversations (id, type, title, created_by, last_seq)
    SELECT gen_random_uuid(), 'group', 'busy ' || i, 'writer', $1::bigint + $1::bigint / 100 FROM generate_series(1, $2::int) i`, [UNREAD, CONVS])
  await store.query("INSERT INTO members (conv_id, user_id) SELECT c.id, u FROM conversations c, unnest(ARRAY['reader', 'writer']) u")
  // texts 1..N from the writer, then one delete for every 100th of them
  await store.query(`INSERT INTO events (conv_id, seq, sender_id, client_msg_id, type, body)
    SELECT c.id, s, 'writer', 't' || s, 'text', jsonb_build_object('text', 'message ' || s)
    FROM conversations c, generate_series(1, $1::bigint) s`, [UNREAD])
  await store.query(`INSERT INTO events (conv_id, seq, sender_id, client_msg_id, type, target_seq)
    SELECT c.id, $1::bigint + k, 'writer', 'd' || k, 'delete', k * 100
    FROM conversations c, generate_series(1, $1::bigint / 100) k`, [UNREAD])
  if (store.driver === 'pg') await store.query('VACUUM ANALYZE')
  else await store.query('ANALYZE')
}

/** The store, with every statement also run under EXPLAIN (ANALYZE, BUFFERS) and its plan printed. */
function explaining (store: Store): Queryable {
  return {
    async query<R>(sql: string, params?: readonly unknown[]): Promise<R[]> {
      const plan = await store.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params)
      console.log(plan.map(r => r['QUERY PLAN']).join('\n') + '\n')
      return await store.query<R>(sql, params)
    }
  }
}

async function timeMs (runs: number, fn: () => Promise<unknown>): Promise<{ p50: number, max: number }> {
  for (let i = 0; i < 3; i++) await fn()
  const ms: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint()
    await fn()
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  ms.sort((a, b) => a - b)
  return { p50: ms[Math.floor(ms.length / 2)] as number, max: ms[ms.length - 1] as number }
}

async function measure (store: Store, teardowns: Array<() => unknown>): Promise<void> {
  await migrate(store)
  const t0 = Date.now()
  await seed(store)
  console.log(`[${store.driver}] seeded ${CONVS} × ${UNREAD} unread texts (+ 1% deleted) in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const api = await buildTestApi({ teardown: fn => { teardowns.push(fn) } }, store)
  const first = await api.call(READER, { method: 'GET', url: '/v1/conversations' })
  const counts = (first.json() as { conversations: Array<{ unread_count: number }> }).conversations.map(c => c.unread_count)
  const badge = (await totalUnread(store, [READER])).get(READER)
  console.log(`[${store.driver}] unread_count per conversation: ${[...new Set(counts)].join(', ')}; badge: ${badge}`)
  if (values.explain && store.driver === 'pg') {
    const { conversationViews } = await import('../core/conversations/views.js')
    console.log('--- conversation list')
    await conversationViews(explaining(store), READER, { limit: 51 })
    console.log('--- badge (totalUnread)')
    await totalUnread(explaining(store), [READER])
  }
  const list = await timeMs(RUNS, () => api.call(READER, { method: 'GET', url: '/v1/conversations' }))
  const push = await timeMs(RUNS, () => totalUnread(store, [READER]))
  console.log(`[${store.driver}] GET /v1/conversations: p50 ${list.p50.toFixed(2)} ms, max ${list.max.toFixed(2)} ms; ` +
    `totalUnread (badge): p50 ${push.p50.toFixed(2)} ms, max ${push.max.toFixed(2)} ms (${RUNS} runs; load average ${os.loadavg()[0]?.toFixed(2)})`)
}

async function main (): Promise<void> {
  const cleanups: Array<() => unknown> = []
  const defer: Defer = fn => { cleanups.push(fn) }
  try {
    await ensurePackages({ postgres: true, redis: false })
    const url = await startPostgres(defer)
    const pgStore = await openPgStore(url, createLogger('silent'))
    defer(() => pgStore.close())
    const apiTeardowns: Array<() => unknown> = []
    await measure(pgStore, apiTeardowns)
    for (const fn of apiTeardowns.reverse()) await fn()
    const lite = await openPgliteStore(null)
    defer(() => lite.close())
    const liteTeardowns: Array<() => unknown> = []
    await measure(lite, liteTeardowns)
    for (const fn of liteTeardowns.reverse()) await fn()
  } finally {
    for (const fn of cleanups.reverse()) await fn()
  }
}

await main()
