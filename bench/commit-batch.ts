// `npx tsx bench/commit-batch.ts [--sizes 1,3,20,200] [--sends 4000]`: what one group-commit
// batch costs PostgreSQL, without the broker: commitBatch (core/messages/event-store.ts)
// called back to back on a throwaway PostgreSQL (test/services/postgres.ts, fsync on) with
// pg_stat_statements tracking the statements inside threadline_commit_sends. 200 direct
// conversations; a batch of n sends spreads over min(n, 200) of them, as the default
// bench's pairs do. Per size: wall time per batch (the round trip, execution and COMMIT's
// flush), execution time of the function and of each statement in it (pg_stat_statements,
// per call), PostgreSQL CPU per send (/proc: the cluster's processes, bench/procs.ts), WAL bytes per send.
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { createLogger } from '../broker/logger.js'
import { migrate } from '../broker/store/migrations.js'
import { openPgStore } from '../broker/store/pg-driver.js'
import { commitBatch, type PendingSend } from '../core/messages/event-store.js'
import { treeCpuBreakdown } from './procs.js'
import { ensurePackages } from '../test/services/debian.js'
import { startPostgres } from '../test/services/postgres.js'
import type { Defer } from '../test/services/util.js'

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '1,3,20,200' }, sends: { type: 'string', default: '4000' } } })
const SIZES = (values.sizes).split(',').map(Number)
const SENDS = Number(values.sends)
if (SIZES.some(n => !Number.isInteger(n) || n < 1 || n > 500) || !Number.isInteger(SENDS) || SENDS < 1 || SENDS > 1_000_000) {
  process.stderr.write('usage: commit-batch.ts [--sizes n,n,… (1–500)] [--sends N (1–1,000,000)]\n')
  process.exit(2)
}
const CONVS = 200

const conv = (k: number): string => `00000000-0000-0000-0000-${String(k).padStart(12, '0')}`

/** CPU ms of this cluster so far: the postmaster, its live children and what exited ones left */
function clusterCpuMs (postmaster: number): number {
  let seconds = 0
  for (const v of treeCpuBreakdown(postmaster).values()) seconds += v
  return seconds * 1000
}

async function main (): Promise<void> {
  const cleanups: Array<() => unknown> = []
  const defer: Defer = fn => { cleanups.push(fn) }
  try {
    await ensurePackages({ postgres: true, redis: false })
    const url = await startPostgres(defer, { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' })
    const store = await openPgStore(url, createLogger('silent'))
    defer(() => store.close())
    await migrate(store)
    await store.query('CREATE EXTENSION pg_stat_statements')
    const [{ dir }] = await store.query<{ dir: string }>('SELECT current_setting(\'data_directory\') AS dir') as [{ dir: string }]
    const postmaster = Number((await readFile(path.join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0])
    await store.query(`INSERT INTO users (id, display_name) SELECT 'u' || g, 'u' FROM generate_series(1, ${2 * CONVS + 1}) g`)
    await store.query(`INSERT INTO conversations (id, type, created_by) SELECT ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'direct', 'u' || (2 * g) FROM generate_series(1, ${CONVS}) g`)
    await store.query(`INSERT INTO members (conv_id, user_id) SELECT ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'u' || (2 * g + k) FROM generate_series(1, ${CONVS}) g, generate_series(0, 1) k`)
    let next = 0
    const batch = (size: number): PendingSend[] => Array.from({ length: size }, (_, i) => {
      const k = (i % CONVS) + 1
      return { convId: conv(k), senderId: `u${2 * k}`, req: { client_msg_id: `m${next++}`, type: 'text', text: 'hello, this is a message of about the bench size' } }
    })
    console.log(`PostgreSQL CPU and WAL per send; load average ${os.loadavg()[0]?.toFixed(2)} at the start (2 cores: figures from a busy machine are pessimistic)`)
    for (const size of SIZES) {
      for (let i = 0; i < 20; i++) await commitBatch(store, batch(size))
      await store.query('SELECT pg_stat_statements_reset()')
      const batches = Math.max(20, Math.floor(SENDS / size))
      const [{ lsn }] = await store.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn') as [{ lsn: string }]
      const cpu0 = clusterCpuMs(postmaster)
      const t0 = performance.now()
      for (let i = 0; i < batches; i++) await commitBatch(store, batch(size))
      const wallMs = performance.now() - t0
      const cpuMs = clusterCpuMs(postmaster) - cpu0
      const [{ wal }] = await store.query<{ wal: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::text AS wal', [lsn]) as [{ wal: string }]
      const statements = await store.query<{ ms: number, query: string }>(
        `SELECT total_exec_time / calls AS ms, regexp_replace(query, '\\s+', ' ', 'g') AS query FROM pg_stat_statements
         WHERE calls >= $1 AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_current_wal_lsn%' ORDER BY total_exec_time DESC`, [batches])
      const sends = batches * size
      console.log(`\nbatch of ${size}: ${(wallMs / batches).toFixed(3)} ms wall per batch, PostgreSQL CPU ${(cpuMs * 1000 / sends).toFixed(1)} µs and WAL ${(Number(wal) / sends).toFixed(0)} B per send (${batches} batches)`)
      for (const s of statements) console.log(`  ${s.ms.toFixed(3).padStart(8)} ms  ${s.query.slice(0, 100)}`)
    }
  } finally {
    for (const fn of cleanups.reverse()) await fn()
  }
}

await main()
