// `--scenario connections`: what an idle session costs a server and how fast sessions
// arrive. On one fresh server, the client processes open a few hundred sessions first
// (they warm the JIT, the PostgreSQL pool and the broker's tables), the server's memory is
// read after a forced GC, then the rest are opened while the server's CPU is read; memory
// again after GC. Per session = the difference ÷ the sessions opened in between, so
// one-time costs stay out of it. The same for raw Aedes, the same client code.
import * as hdr from 'hdr-histogram-js'
import pg from 'pg'
import { sleep } from '../test/services/util.js'
import { type HeapReading, readHeap } from './longpoll-memory.js'
import type { Servers } from './phase.js'
import { CLK_TCK, cpuSeconds, machineTicks, treeCpuBreakdown, type Child } from './procs.js'
import type { SessionsCommand, SessionsResult, Target } from './protocol.js'
import type { WorkerPool } from './workers.js'

/** sessions opened before the baseline reading: at most this many, and a tenth of them */
const WARM_SESSIONS = 500

export type SessionSpec = SessionsCommand['sessions'][number]

/** Session k: user `cu<k>` with device `dev<k>`, each with its own token. */
export function sessionSpecs (count: number, token: (user: string) => string): SessionSpec[] {
  return Array.from({ length: count }, (_, k) => ({ user: `cu${k}`, device: `dev${k}`, token: token(`cu${k}`) }))
}

/** The users exist already, as a returning user's do: a CONNECT is then one upsert that writes nothing. */
export async function insertUsers (databaseUrl: string, users: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    await client.query('INSERT INTO users (id, display_name) SELECT u, u FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING', [users])
  } finally {
    await client.end()
  }
}

export interface ConnectFigures {
  /** sessions that reached SUBACK in the measured batch */
  sessions: number
  failed: number
  errorSamples: string[]
  /** from the first CONNECT to the last SUBACK of the measured batch, over all client processes */
  wallMs: number
  /** the same as CLOCK_MONOTONIC µs (bench/profile-summary.ts --from/--to takes it) */
  windowUs: [number, number]
  sessionsPerS: number
  /** µs from each session's TCP connect to its SUBACK */
  connectToSuback: string
}

export interface CpuFigures {
  brokerUsPerSession: number
  pgUsPerSession: number | null
  workersUsPerSession: number
  brokerPct: number
  pgPct: number | null
  workersPct: number
  /** the machine's busy time not used by the bench's own processes, % of one core */
  othersPct: number
}

export interface ConnectionsRound {
  target: Target
  round: number
  brokerPid: number
  /** sessions open before the baseline reading, and in all */
  warmSessions: number
  totalSessions: number
  /** the server with no session at all, after the warm-up batch, after every session (all after GC) */
  empty: HeapReading
  warm: HeapReading
  full: HeapReading
  heapBytesPerSession: number
  rssBytesPerSession: number
  connect: ConnectFigures
  cpu: CpuFigures
  /** sessions whose connection closed after their SUBACK, before the end of the round */
  dropped: number
  /** other jobs on the machine just before the round, % of one core (null: not measured) */
  othersBeforePct: number | null
}

/** What a server running for one round looks like from here. */
export interface SessionTarget {
  servers: Servers
  url: string
  child: Child
}

const round2 = (v: number, digits = 1): number => Number.isFinite(v) ? Number(v.toFixed(digits)) : v

/** Splits `specs` over the pool's processes (session k to process k mod size) and opens them; answers every process's result. */
async function openSessions (pool: WorkerPool, url: string, specs: SessionSpec[], concurrency: number, keepaliveS: number, timeoutMs: number): Promise<SessionsResult[]> {
  const per = Math.max(1, Math.floor(concurrency / pool.size))
  return await Promise.all(Array.from({ length: pool.size }, async (_, w) => {
    const sessions = specs.filter((_, k) => k % pool.size === w)
    const answer = await pool.ask(w, { cmd: 'sessions', url, sessions, concurrency: per, keepaliveS }, 'sessions', timeoutMs)
    return answer.result
  }))
}

interface CpuSnapshot { broker: number, pg: number | null, workers: number, driver: number, busy: number, at: number }

function cpuSnapshot (servers: Servers, pool: WorkerPool): CpuSnapshot {
  const own = process.cpuUsage()
  return {
    broker: cpuSeconds(servers.brokerPid),
    pg: servers.pgRootPid !== null ? [...treeCpuBreakdown(servers.pgRootPid).values()].reduce((a, b) => a + b, 0) : null,
    workers: pool.pids.map(cpuSeconds).reduce((a, b) => a + b, 0),
    driver: (own.user + own.system) / 1e6,
    busy: machineTicks().busy / CLK_TCK,
    at: performance.now()
  }
}

function cpuFigures (a: CpuSnapshot, b: CpuSnapshot, sessions: number): CpuFigures {
  const wallS = Math.max(1e-3, (b.at - a.at) / 1000)
  const broker = b.broker - a.broker
  const pgS = a.pg !== null && b.pg !== null ? b.pg - a.pg : null
  const workers = b.workers - a.workers
  const others = Math.max(0, (b.busy - a.busy) - broker - (pgS ?? 0) - workers - (b.driver - a.driver))
  const us = (s: number): number => round2(1e6 * s / Math.max(1, sessions))
  const pct = (s: number): number => round2(100 * s / wallS, 0)
  return {
    brokerUsPerSession: us(broker),
    pgUsPerSession: pgS !== null ? us(pgS) : null,
    workersUsPerSession: us(workers),
    brokerPct: pct(broker),
    pgPct: pgS !== null ? pct(pgS) : null,
    workersPct: pct(workers),
    othersPct: pct(others)
  }
}

/** The server's memory once a collection has run and the allocator has had a moment. */
async function settledHeap (child: Child): Promise<HeapReading> {
  await readHeap(child)
  await sleep(1000)
  return await readHeap(child)
}

/**
 * One round on a fresh server (started with bench/heap-probe.ts): warm-up batch, baseline,
 * the measured batch, memory again. The sessions stay open until the pool is closed.
 */
export async function measureSessions (t: SessionTarget, pool: WorkerPool, specs: SessionSpec[], opts: { connectConcurrency: number, keepaliveS: number },
  round: number, log: (msg: string) => void): Promise<ConnectionsRound> {
  const warmCount = Math.max(1, Math.min(WARM_SESSIONS, Math.floor(specs.length / 10)))
  // every loop bounded in time: a minute plus 20 ms per session
  const timeoutMs = 60_000 + 20 * specs.length
  const empty = await settledHeap(t.child)
  const warmResults = await openSessions(pool, t.url, specs.slice(0, warmCount), opts.connectConcurrency, opts.keepaliveS, timeoutMs)
  const warmFailed = warmResults.reduce((a, r) => a + r.failed, 0)
  if (warmFailed > 0) throw new Error(`${t.servers.target}: ${warmFailed} of the first ${warmCount} sessions failed: ${warmResults.flatMap(r => r.errorSamples).join('; ')}`)
  const warm = await settledHeap(t.child)
  const a = cpuSnapshot(t.servers, pool)
  const results = await openSessions(pool, t.url, specs.slice(warmCount), opts.connectConcurrency, opts.keepaliveS, timeoutMs)
  const b = cpuSnapshot(t.servers, pool)
  const full = await settledHeap(t.child)

  const opened = results.reduce((x, r) => x + r.opened, 0)
  const failed = results.reduce((x, r) => x + r.failed, 0)
  const firstAt = Math.min(...results.filter(r => r.opened + r.failed > 0).map(r => r.firstAt))
  const lastAt = Math.max(...results.map(r => r.lastAt))
  const wallMs = Math.max(0.001, (lastAt - firstAt) / 1000)
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 })
  for (const r of results) h.add(hdr.decodeFromCompressedBase64(r.connectToSuback))
  const measured = Math.max(1, opened)
  const out: ConnectionsRound = {
    target: t.servers.target,
    round,
    brokerPid: t.servers.brokerPid,
    warmSessions: warmCount,
    totalSessions: warmCount + opened,
    empty,
    warm,
    full,
    heapBytesPerSession: Math.round((full.heapBytes - warm.heapBytes) / measured),
    rssBytesPerSession: Math.round((full.rssBytes - warm.rssBytes) / measured),
    connect: {
      sessions: opened,
      failed,
      errorSamples: results.flatMap(r => r.errorSamples).slice(0, 5),
      wallMs: round2(wallMs, 0),
      windowUs: [Math.round(firstAt), Math.round(lastAt)],
      sessionsPerS: round2(1000 * opened / wallMs, 0),
      connectToSuback: hdr.encodeIntoCompressedBase64(h)
    },
    cpu: cpuFigures(a, b, opened),
    dropped: results.reduce((x, r) => x + r.dropped, 0),
    othersBeforePct: null
  }
  log(`${t.servers.target} round ${round}: ${out.totalSessions} sessions, ${out.connect.sessionsPerS} sessions/s, ` +
    `p50 ${(h.getValueAtPercentile(50) / 1000).toFixed(1)} / p99 ${(h.getValueAtPercentile(99) / 1000).toFixed(1)} ms to SUBACK, ` +
    `${out.heapBytesPerSession} B heap / ${out.rssBytesPerSession} B RSS per session, failed ${failed}, other jobs ${out.cpu.othersPct}%`)
  return out
}
