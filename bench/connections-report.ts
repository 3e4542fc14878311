// The report of `npm run bench -- --scenario connections`: per target, the server's memory
// per idle session and the connect rate, averaged over rounds; Threadline ÷ raw Aedes.
import * as hdr from 'hdr-histogram-js'
import type { ConnectionsRound } from './connections.js'
import type { BenchOptions } from './options.js'
import type { Target } from './protocol.js'
import { type BenchReport, f, heading, markdownTable, pad } from './report.js'

/** issue 12's target: an idle Threadline session costs at most this much more memory than one on raw Aedes */
export const MEMORY_RATIO_TARGET = 1.2

export interface ConnectionsSummary {
  target: Target
  rounds: number
  sessions: number
  heapBytesPerSession: number
  rssBytesPerSession: number
  /** the server after every session, after GC (last round) */
  heapMiB: number
  rssMiB: number
  sessionsPerS: number
  connectMs: { p50: number, p90: number, p99: number, max: number }
  failed: number
  dropped: number
  brokerUsPerSession: number
  pgUsPerSession: number | null
  brokerPct: number
  pgPct: number | null
  workersPct: number
  othersPct: number
}

export type ConnectionsReport = Pick<BenchReport, 'startedAt' | 'command' | 'machine' | 'code'> & {
  options: BenchOptions
  rounds: ConnectionsRound[]
  summaries: ConnectionsSummary[]
  /** Threadline ÷ raw Aedes, when both ran */
  ratio: { heap: number, rss: number, sessionsPerS: number } | null
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
const r1 = (v: number, digits = 1): number => Number(v.toFixed(digits))
const mib = (bytes: number): number => r1(bytes / 1048576)

export function summarizeConnections (rounds: ConnectionsRound[]): ConnectionsSummary[] {
  const targets = [...new Set(rounds.map(r => r.target))]
  return targets.map(target => {
    const mine = rounds.filter(r => r.target === target)
    const last = mine[mine.length - 1] as ConnectionsRound
    const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 })
    for (const r of mine) h.add(hdr.decodeFromCompressedBase64(r.connect.connectToSuback))
    const ms = (p: number): number => r1(h.getValueAtPercentile(p) / 1000, 2)
    const pgs = mine.map(r => r.cpu.pgUsPerSession).filter((x): x is number => x !== null)
    const pgPcts = mine.map(r => r.cpu.pgPct).filter((x): x is number => x !== null)
    return {
      target,
      rounds: mine.length,
      sessions: last.totalSessions,
      heapBytesPerSession: Math.round(mean(mine.map(r => r.heapBytesPerSession))),
      rssBytesPerSession: Math.round(mean(mine.map(r => r.rssBytesPerSession))),
      heapMiB: mib(last.full.heapBytes),
      rssMiB: mib(last.full.rssBytes),
      sessionsPerS: Math.round(mean(mine.map(r => r.connect.sessionsPerS))),
      connectMs: { p50: ms(50), p90: ms(90), p99: ms(99), max: r1(h.maxValue / 1000, 2) },
      failed: mine.reduce((a, r) => a + r.connect.failed, 0),
      dropped: mine.reduce((a, r) => a + r.dropped, 0),
      brokerUsPerSession: r1(mean(mine.map(r => r.cpu.brokerUsPerSession)), 0),
      pgUsPerSession: pgs.length > 0 ? r1(mean(pgs), 0) : null,
      brokerPct: r1(mean(mine.map(r => r.cpu.brokerPct)), 0),
      pgPct: pgPcts.length > 0 ? r1(mean(pgPcts), 0) : null,
      workersPct: r1(mean(mine.map(r => r.cpu.workersPct)), 0),
      othersPct: r1(mean(mine.map(r => r.cpu.othersPct)), 0)
    }
  })
}

export function connectionsRatio (summaries: ConnectionsSummary[]): ConnectionsReport['ratio'] {
  const tl = summaries.find(s => s.target === 'threadline')
  const raw = summaries.find(s => s.target === 'raw-aedes')
  if (tl === undefined || raw === undefined) return null
  return {
    heap: r1(tl.heapBytesPerSession / raw.heapBytesPerSession, 2),
    rss: r1(tl.rssBytesPerSession / raw.rssBytesPerSession, 2),
    sessionsPerS: r1(tl.sessionsPerS / raw.sessionsPerS, 2)
  }
}

const kib = (bytes: number): string => (bytes / 1024).toFixed(1)

function rows (report: ConnectionsReport): string[][] {
  const head = ['target', 'sessions', 'rounds', 'heap KiB/session', 'RSS KiB/session', 'heap MiB', 'RSS MiB', 'sessions/s',
    'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'failed', 'dropped', 'broker µs/session', 'PG µs/session', 'broker %', 'PG %', 'workers %', 'others %']
  return [head, ...report.summaries.map(s => [
    s.target, String(s.sessions), String(s.rounds), kib(s.heapBytesPerSession), kib(s.rssBytesPerSession), f(s.heapMiB), f(s.rssMiB),
    String(s.sessionsPerS), f(s.connectMs.p50, 2), f(s.connectMs.p90, 2), f(s.connectMs.p99, 2), f(s.connectMs.max, 1),
    String(s.failed), String(s.dropped), f(s.brokerUsPerSession, 0), f(s.pgUsPerSession, 0),
    f(s.brokerPct, 0), f(s.pgPct, 0), f(s.workersPct, 0), f(s.othersPct, 0)
  ])]
}

function findings (report: ConnectionsReport): string[] {
  const out: string[] = []
  const ratio = report.ratio
  if (ratio !== null) {
    const pass = ratio.heap <= MEMORY_RATIO_TARGET
    out.push(`memory per idle session, Threadline ÷ raw Aedes: heap ${ratio.heap}×, RSS ${ratio.rss}× ` +
      `(issue 12's target: ≤ ${MEMORY_RATIO_TARGET}×, ${pass ? 'PASS' : 'FAIL'} on the heap); connect rate ${ratio.sessionsPerS}× raw Aedes'`)
  }
  for (const r of report.rounds) {
    const issues: string[] = []
    if (r.connect.failed > 0) issues.push(`${r.connect.failed} sessions failed (${r.connect.errorSamples.join('; ')})`)
    if (r.dropped > 0) issues.push(`${r.dropped} sessions' connections closed after their SUBACK`)
    if (r.cpu.othersPct >= 25) issues.push(`other jobs on the machine used ${r.cpu.othersPct}% of a core while the sessions connected: rates and CPU are pessimistic`)
    out.push(`${r.target} round ${r.round}: ${r.warmSessions} sessions before the baseline, ${r.connect.sessions} measured in ${r.connect.wallMs} ms; ` +
      `heap + Buffers after GC ${f(mib(r.empty.heapBytes))} (no session) → ${f(mib(r.warm.heapBytes))} → ${f(mib(r.full.heapBytes))} MiB, ` +
      `RSS ${f(mib(r.empty.rssBytes))} → ${f(mib(r.warm.rssBytes))} → ${f(mib(r.full.rssBytes))} MiB` +
      (issues.length > 0 ? `; ${issues.join('; ')}` : ''))
  }
  return out
}

export function connectionsTable (report: ConnectionsReport): string {
  return [pad(rows(report)), '', ...findings(report)].join('\n')
}

export function connectionsMarkdown (report: ConnectionsReport): string {
  const o = report.options
  return [
    ...heading('Threadline connections benchmark', report),
    '',
    `${o.connections} idle persistent sessions per target (clean=false, each its own user and device, inbox subscribed at QoS 1), ` +
      `${o.workers} client processes, ${o.connectConcurrency} connecting at once, keepalive ${o.keepaliveS} s, ${o.rounds} round(s) per target on a fresh server each.`,
    '',
    ...markdownTable(rows(report)),
    '',
    'Memory: the server\'s heap (JS heap + Buffers) and RSS after a forced GC, after the first sessions and after all of them, ' +
      'the difference ÷ the sessions opened in between. Connect rate: those sessions ÷ the time from the first one\'s TCP connect to the last SUBACK; ' +
      'latency from each session\'s TCP connect to its SUBACK. CPU: over that batch, per session.',
    '',
    ...findings(report).map(n => `- ${n}`)
  ].join('\n')
}
