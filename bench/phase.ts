// One measured phase: tell every worker when to start, mark and stop; read the CPU of
// the server, PostgreSQL and the workers at mark and stop; gather the workers' results
// and turn them into figures (throughput, latency, loss, order, CPU per message).
import * as hdr from 'hdr-histogram-js'
import type pg from 'pg'
import { Bitmap } from './bitmap.js'
import { CLK_TCK, cpuSeconds, machineTicks, rssMiB, treeCpuBreakdown } from './procs.js'
import { type LoadShape, type PhaseResult, type PollCounts, type SignalsResult, type Target, nowUs } from './protocol.js'
import type { Scenario } from './scenario.js'
import type { WorkerPool } from './workers.js'

export interface Servers {
  target: Target
  /** names this target in reports when two of one kind run side by side (`threadline window=0`) */
  label?: string
  /**
   * A cumulative count of the store writes under study, read before and after each round
   * (the signals scenario: receipt writes, from pg_stat_statements)
   */
  countWrites?: () => Promise<number>
  /** the broker process (Threadline node or raw Aedes) */
  brokerPid: number
  /** postmaster of the throwaway cluster; null for raw Aedes */
  pgRootPid: number | null
  /** a connection for xid/WAL counters; null for raw Aedes */
  pgStats: pg.Client | null
}

/**
 * What Threadline's PostgreSQL sessions were doing, sampled every few ms over the measured
 * window (--pg-sample): a send batch's wall time is either PostgreSQL working ("active",
 * including its WAL flush) or PostgreSQL waiting for the next statement from the node
 * ("idle in transaction": a network round trip plus the node's event-loop delay).
 */
export interface PgSample {
  samples: number
  activePct: number
  idleInTransactionPct: number
  noTransactionPct: number
  /** wait events seen while active, % of all samples */
  waits: Record<string, number>
}

async function samplePg (client: pg.Client, until: number, everyMs: number): Promise<PgSample> {
  let samples = 0
  let active = 0
  let idleInTx = 0
  const waits: Record<string, number> = {}
  // bounded by time and by count
  for (let i = 0; i < 1_000_000 && nowUs() < until; i++) {
    const { rows } = await client.query<{ state: string | null, wait: string | null }>(
      `SELECT state, wait_event_type || ':' || wait_event AS wait FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`)
    samples++
    const act = rows.filter(r => r.state === 'active')
    if (act.length > 0) {
      active++
      for (const r of act) if (r.wait !== null) waits[r.wait] = (waits[r.wait] ?? 0) + 1
    } else if (rows.some(r => r.state === 'idle in transaction')) idleInTx++
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
  const p = (n: number): number => round(100 * n / Math.max(1, samples), 1)
  return {
    samples,
    activePct: p(active),
    idleInTransactionPct: p(idleInTx),
    noTransactionPct: p(samples - active - idleInTx),
    waits: Object.fromEntries(Object.entries(waits).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, p(v)]))
  }
}

export interface PhasePlan {
  mode: 'max' | 'rate' | 'group'
  /** total over all workers; the rate is split by how many senders each worker has */
  shape: { kind: 'window', window: number } | { kind: 'rate', ratePerS: number }
  warmupS: number
  durationS: number
  drainS: number
  /** sample pg_stat_activity during the measured window (costs PostgreSQL a little CPU) */
  pgSample: boolean
}

export interface LatencyFigures { count: number, p50: number, p90: number, p99: number, p999: number, max: number, mean: number }

/** The signals scenario's figures, per acknowledged send over whole rounds (warm-up and drain included). */
export interface SignalsFigures extends SignalsResult {
  receiptsSentPerMsg: number
  typingPerMsg: number
  /** summaries on conv/<c>/receipts */
  convSummariesPerMsg: number
  /** `receipts` summaries that reached members' inboxes (the senders'), all members together */
  inboxSummariesPerMsg: number
  /** own-marker `receipts` envelopes that reached readers' inboxes, all members together */
  ownMarkersPerMsg: number
  /** receipt write statements, when the target counts them */
  storeWrites: number | null
  storeWritesPerMsg: number | null
}

/**
 * --scenario longpoll: the long-poll recipients' figures. Latency counts to the arrival of
 * the whole poll answer that carried the event.
 */
export interface LongPollFigures {
  /** long-poll deliveries per second (the PhaseReport's deliveredPerS counts them too) */
  deliveredPerS: number
  latencyMs: LatencyFigures
  latencyFromPublishMs: LatencyFigures
  lost: number
  duplicates: number
  orderViolations: number
  errors: number
  polls: PollCounts & { answersPerS: number, eventsPerAnswer: number }
}

export interface PhaseReport {
  target: Target
  label: string
  /** the broker's pid: names its --cpu-prof profile */
  brokerPid: number
  mode: PhasePlan['mode']
  scenario: { name: Scenario['name'], conversations: number, members: number, senders: number, recipientsPerSend: number }
  load: { window?: number, offeredPerS?: number, warmupS: number, durationS: number, rounds: number, workers: number }
  /** total measured seconds over all rounds */
  windowS: number
  /** the measured windows [start, end) in CLOCK_MONOTONIC µs: V8's .cpuprofile timestamps use the same clock */
  windowsUs: Array<[number, number]>
  /** sends PUBACKed (= committed, for Threadline) per second */
  ackedPerS: number
  /** deliveries to members other than the sender, per second */
  deliveredPerS: number
  /** sends both acknowledged and delivered: min(acked/s, delivered/s ÷ recipients per send) */
  msgPerS: number
  /** ms, from the send's due time (open loop) or its publish (closed loop) to the delivery (MQTT recipients) */
  latencyMs: LatencyFigures
  /** ms, from the actual publish call */
  latencyFromPublishMs: LatencyFigures
  /** ms, how late the open-loop scheduler published (its own contention, not the server's) */
  schedulerLagMs: LatencyFigures
  /** the workers' counts (PhaseResult), summed, plus what only the driver can tell */
  integrity: Pick<PhaseResult, 'sent' | 'acked' | 'duplicates' | 'orderViolations' | 'seqGaps' | 'errors' | 'errorSamples' | 'stray'> & {
    unacked: number
    /** PUBACKed sends some member (recipient or the sender's echo) never received */
    lost: number
    drained: boolean
  }
  cpu: {
    brokerPct: number
    pgPct: number | null
    workersPct: number[]
    /** the whole machine, % of all its cores */
    machineBusyPct: number
    /** CPU used by processes that are not part of the bench (other jobs on the box), % of one core */
    othersPct: number
    /** the same, sampled over 1 s just before the phase while the bench was idle */
    othersBeforePct: number | null
    brokerUsPerMsg: number
    pgUsPerMsg: number | null
    /** broker + PostgreSQL */
    serverUsPerMsg: number
    /** all load workers together: what the client side costs per message */
    workersUsPerMsg: number
    /** per QoS 1 delivery, the sender's echo included */
    brokerUsPerDelivery: number
    /** the broker's resident memory at the start and the end of the measured window */
    brokerRssMiB: [number, number]
  }
  pg: {
    transactions: number
    sendsPerTransaction: number
    walBytesPerMsg: number
    /** PostgreSQL CPU per write transaction, µs */
    cpuUsPerTransaction: number
    /** PostgreSQL CPU in the window by process title, % of one core */
    cpuByProcessPct: Record<string, number>
    activity: PgSample | null
  } | null
  signals: SignalsFigures | null
  longpoll: LongPollFigures | null
}

export interface Snapshot { at: number, rss: number, broker: number, pg: number | null, pgParts: Map<string, number> | null, workers: number[], driver: number, machine: { busy: number, total: number } }

function snapshot (servers: Servers, workers: WorkerPool): Snapshot {
  const own = process.cpuUsage()
  return {
    at: nowUs(),
    rss: rssMiB(servers.brokerPid),
    broker: cpuSeconds(servers.brokerPid),
    ...pgCpu(servers.pgRootPid),
    workers: workers.pids.map(cpuSeconds),
    driver: (own.user + own.system) / 1e6,
    machine: machineTicks()
  }
}

function pgCpu (root: number | null): { pg: number | null, pgParts: Map<string, number> | null } {
  if (root === null) return { pg: null, pgParts: null }
  const parts = treeCpuBreakdown(root)
  return { pg: [...parts.values()].reduce((a, b) => a + b, 0), pgParts: parts }
}

interface PgCounters { nextXid: number, walLsn: string }

async function pgCounters (client: pg.Client | null): Promise<PgCounters | null> {
  if (client === null) return null
  // Neither reading assigns a transaction id, and neither waits for the statistics
  // collector's flush interval: the xid counter moves once per write transaction,
  // i.e. once per group-commit batch.
  const { rows } = await client.query<{ xid: string, lsn: string }>(
    'SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xid, pg_current_wal_lsn()::text AS lsn')
  return { nextXid: Number(rows[0]?.xid), walLsn: rows[0]?.lsn as string }
}

async function walBytes (client: pg.Client, from: string, to: string): Promise<number> {
  const { rows } = await client.query<{ d: string }>('SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::text AS d', [from, to])
  return Number(rows[0]?.d)
}

const sleepUntil = (t: number): Promise<void> => new Promise(resolve => setTimeout(resolve, Math.max(0, (t - nowUs()) / 1000)))

const round = (v: number, digits = 2): number => Number.isFinite(v) ? Number(v.toFixed(digits)) : v

function latency (encoded: string[]): LatencyFigures {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 })
  for (const e of encoded) h.add(hdr.decodeFromCompressedBase64(e))
  const ms = (us: number): number => round(us / 1000, 3)
  if (h.totalCount === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN }
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    mean: ms(h.mean)
  }
}

/**
 * Acked sends that some connected member of the conversation (one with a client, and
 * `counts` it) never received; a member with no device is expected to miss them.
 */
function countLost (scenario: Scenario, results: PhaseResult[], counts: (member: string) => boolean = () => true): number {
  const acked = new Map<string, Bitmap>()
  const received = new Map<string, Bitmap>()
  for (const r of results) {
    for (const [k, v] of Object.entries(r.ackedBits)) acked.set(k, Bitmap.fromBase64(v))
    for (const [k, v] of Object.entries(r.receivedBits)) received.set(k, Bitmap.fromBase64(v))
  }
  const connected = new Set(scenario.clients.map(c => c.user))
  let lost = 0
  for (const conv of scenario.convs) {
    for (const sender of scenario.senders.filter(s => s.convId === conv.id)) {
      const sent = acked.get(String(sender.index))
      if (sent === undefined) continue
      for (const member of conv.members) {
        if (connected.has(member) && counts(member)) lost += sent.missingFrom(received.get(`${member}\u0000${sender.index}`))
      }
    }
  }
  return lost
}

let phaseCounter = 0

/** One measured round of a phase, before it is summarised. */
export interface Round {
  results: PhaseResult[]
  a: Snapshot
  b: Snapshot
  markAt: number
  stopAt: number
  transactions: number | null
  walBytes: number | null
  activity: PgSample | null
  /** servers.countWrites over the round */
  writes: number | null
}

/** Runs one round: warm-up, the measured window [markAt, stopAt), drain. */
export async function runRound (servers: Servers, workers: WorkerPool, scenario: Scenario, plan: PhasePlan, warmupS: number, durationS: number): Promise<Round> {
  const phase = ++phaseCounter
  const sendersIn = (w: number): number => scenario.senders.filter(s => scenario.clients.find(c => c.user === s.user)?.worker === w).length
  const shapeFor = (w: number): LoadShape => plan.shape.kind === 'window'
    ? plan.shape
    : { kind: 'rate', ratePerS: plan.shape.ratePerS * sendersIn(w) / scenario.senders.length }
  const pgBefore = await pgCounters(servers.pgStats)
  const writesBefore = await servers.countWrites?.() ?? null
  // a little slack so every worker has the command before startAt
  const startAt = nowUs() + 300_000
  const markAt = startAt + warmupS * 1e6
  const stopAt = markAt + durationS * 1e6
  // at most what 250k sends/s per worker could issue: a bound, not a target
  const maxSends = Math.ceil((warmupS + durationS + 1) * 250_000)
  const running = workers.run(w => ({
    cmd: 'run',
    phase,
    shape: shapeFor(w),
    startAt,
    markAt,
    stopAt,
    maxSends,
    drainMs: plan.drainS * 1000
  }), (warmupS + durationS + plan.drainS) * 1000 + 30_000)
  // a failing worker must not leave this rejection unobserved while we sleep
  running.catch(() => {})
  await sleepUntil(markAt)
  const a = snapshot(servers, workers)
  let sampling: Promise<PgSample> | null = null
  if (plan.pgSample && servers.pgStats !== null) {
    sampling = samplePg(servers.pgStats, stopAt, 5)
    sampling.catch(() => {})
  }
  await sleepUntil(stopAt)
  const b = snapshot(servers, workers)
  const activity = sampling !== null ? await sampling : null
  const results = await running
  const pgAfter = await pgCounters(servers.pgStats)
  const writesAfter = await servers.countWrites?.() ?? null
  const pgDone = pgBefore !== null && pgAfter !== null && servers.pgStats !== null
  return {
    results,
    a,
    b,
    markAt,
    stopAt,
    activity,
    writes: writesBefore !== null && writesAfter !== null ? writesAfter - writesBefore : null,
    transactions: pgDone ? pgAfter.nextXid - pgBefore.nextXid : null,
    walBytes: pgDone ? await walBytes(servers.pgStats as pg.Client, pgBefore.walLsn, pgAfter.walLsn) : null
  }
}

function mergeActivity (rounds: Round[]): PgSample | null {
  const xs = rounds.map(r => r.activity).filter((x): x is PgSample => x !== null)
  if (xs.length === 0) return null
  const samples = xs.reduce((acc, x) => acc + x.samples, 0)
  const avg = (f: (x: PgSample) => number): number => round(xs.reduce((acc, x) => acc + f(x) * x.samples, 0) / Math.max(1, samples), 1)
  const waits: Record<string, number> = {}
  for (const x of xs) for (const [k, v] of Object.entries(x.waits)) waits[k] = (waits[k] ?? 0) + v * x.samples / Math.max(1, samples)
  return {
    samples,
    activePct: avg(x => x.activePct),
    idleInTransactionPct: avg(x => x.idleInTransactionPct),
    noTransactionPct: avg(x => x.noTransactionPct),
    waits: Object.fromEntries(Object.entries(waits).map(([k, v]) => [k, round(v, 1)]))
  }
}

/** Figures of a phase from its rounds: windows, counts and CPU deltas add up, histograms merge. */
export function summarize (servers: Servers, workers: WorkerPool, scenario: Scenario, plan: PhasePlan, rounds: Round[]): PhaseReport {
  const results = rounds.flatMap(r => r.results)
  // latency figures are the MQTT recipients'; long-poll ones have their own (longpoll)
  const viaMqtt = results.filter(r => r.transport !== 'longpoll')
  const over = (f: (a: Snapshot, b: Snapshot) => number): number => rounds.reduce((acc, r) => acc + f(r.a, r.b), 0)
  const windowS = over((a, b) => (b.at - a.at) / 1e6)
  const sum = (f: (r: PhaseResult) => number): number => results.reduce((acc, r) => acc + f(r), 0)
  const ackedPerS = sum(r => r.ackedInWindow) / windowS
  const deliveredPerS = sum(r => r.deliveredInWindow) / windowS
  const msgPerS = Math.min(ackedPerS, deliveredPerS / scenario.recipientsPerSend)
  const msgs = msgPerS * windowS
  // every member gets each send, the sender's own echo included
  const deliveries = msgs * (scenario.recipientsPerSend + 1)
  const brokerS = over((a, b) => b.broker - a.broker)
  const pgS = servers.pgRootPid !== null ? over((a, b) => (b.pg ?? 0) - (a.pg ?? 0)) : null
  const workerS = workers.pids.map((_, i) => over((a, b) => (b.workers[i] ?? 0) - (a.workers[i] ?? 0)))
  const driverS = over((a, b) => b.driver - a.driver)
  const machine = { busy: over((a, b) => b.machine.busy - a.machine.busy), total: over((a, b) => b.machine.total - a.machine.total) }
  const pct = (s: number): number => round(100 * s / windowS, 1)
  const sent = sum(r => r.sent)
  const acked = sum(r => r.acked)

  let pgFigures: PhaseReport['pg'] = null
  if (rounds.every(r => r.transactions !== null)) {
    const transactions = rounds.reduce((acc, r) => acc + (r.transactions as number), 0)
    const parts = new Map<string, number>()
    for (const r of rounds) {
      for (const [k, v] of r.b.pgParts ?? []) parts.set(k, (parts.get(k) ?? 0) + v - (r.a.pgParts?.get(k) ?? 0))
    }
    pgFigures = {
      transactions,
      sendsPerTransaction: round(acked / Math.max(1, transactions), 1),
      walBytesPerMsg: round(rounds.reduce((acc, r) => acc + (r.walBytes ?? 0), 0) / Math.max(1, acked), 0),
      // transactions span whole rounds; scale them to the measured windows by acked sends
      cpuUsPerTransaction: round(1e6 * (pgS ?? 0) / Math.max(1, transactions * (sum(r => r.ackedInWindow) / Math.max(1, acked))), 0),
      cpuByProcessPct: Object.fromEntries([...parts]
        .map(([k, v]) => [k, round(100 * v / windowS, 1)] as const)
        .filter(([, v]) => v > 0)
        .sort((x, y) => y[1] - x[1])),
      activity: mergeActivity(rounds)
    }
  }

  return {
    target: servers.target,
    label: servers.label ?? servers.target,
    brokerPid: servers.brokerPid,
    mode: plan.mode,
    scenario: {
      name: scenario.name,
      conversations: scenario.convs.length,
      members: scenario.clients.length,
      senders: scenario.senders.length,
      recipientsPerSend: scenario.recipientsPerSend
    },
    load: {
      ...(plan.shape.kind === 'window' ? { window: plan.shape.window } : { offeredPerS: plan.shape.ratePerS }),
      warmupS: plan.warmupS,
      durationS: plan.durationS,
      rounds: rounds.length,
      workers: workers.size
    },
    windowS: round(windowS, 3),
    windowsUs: rounds.map(r => [Math.round(r.markAt), Math.round(r.stopAt)] as [number, number]),
    ackedPerS: round(ackedPerS, 0),
    deliveredPerS: round(deliveredPerS, 0),
    msgPerS: round(msgPerS, 0),
    latencyMs: latency(viaMqtt.map(r => r.latencyFromIntended)),
    latencyFromPublishMs: latency(viaMqtt.map(r => r.latencyFromActual)),
    schedulerLagMs: latency(results.map(r => r.schedulerLag)),
    integrity: {
      sent,
      acked,
      unacked: sent - acked,
      lost: rounds.reduce((acc, r) => acc + countLost(scenario, r.results), 0),
      duplicates: sum(r => r.duplicates),
      orderViolations: sum(r => r.orderViolations),
      seqGaps: sum(r => r.seqGaps),
      errors: sum(r => r.errors),
      errorSamples: results.flatMap(r => r.errorSamples).slice(0, 5),
      stray: sum(r => r.stray),
      drained: results.every(r => r.drained)
    },
    cpu: {
      brokerPct: pct(brokerS),
      pgPct: pgS !== null ? pct(pgS) : null,
      workersPct: workerS.map(pct),
      machineBusyPct: round(100 * machine.busy / Math.max(1, machine.total), 1),
      othersPct: pct(Math.max(0, machine.busy / CLK_TCK - brokerS - (pgS ?? 0) - driverS - workerS.reduce((x, y) => x + y, 0))),
      othersBeforePct: null,
      brokerUsPerMsg: round(1e6 * brokerS / msgs, 1),
      pgUsPerMsg: pgS !== null ? round(1e6 * pgS / msgs, 1) : null,
      serverUsPerMsg: round(1e6 * (brokerS + (pgS ?? 0)) / msgs, 1),
      workersUsPerMsg: round(1e6 * workerS.reduce((x, y) => x + y, 0) / msgs, 1),
      brokerUsPerDelivery: round(1e6 * brokerS / Math.max(1, deliveries), 2),
      brokerRssMiB: [rounds[0]?.a.rss ?? NaN, rounds.at(-1)?.b.rss ?? NaN]
    },
    pg: pgFigures,
    signals: signalsFigures(results, rounds, acked),
    longpoll: longPollFigures(scenario, rounds, windowS)
  }
}

function longPollFigures (scenario: Scenario, rounds: Round[], windowS: number): LongPollFigures | null {
  const results = rounds.flatMap(r => r.results).filter(r => r.transport === 'longpoll')
  if (results.length === 0) return null
  const sum = (f: (r: PhaseResult) => number): number => results.reduce((acc, r) => acc + f(r), 0)
  const polls: PollCounts = {
    answers: sum(r => r.polls?.answers ?? 0),
    empty: sum(r => r.polls?.empty ?? 0),
    events: sum(r => r.polls?.events ?? 0),
    failed: sum(r => r.polls?.failed ?? 0)
  }
  const polling = new Set(scenario.clients.filter(c => c.via === 'longpoll').map(c => c.user))
  return {
    deliveredPerS: round(sum(r => r.deliveredInWindow) / windowS, 0),
    latencyMs: latency(results.map(r => r.latencyFromIntended)),
    latencyFromPublishMs: latency(results.map(r => r.latencyFromActual)),
    // round by round, as integrity.lost counts: each round is a phase with bitmaps of its own
    lost: rounds.reduce((acc, r) => acc + countLost(scenario, r.results, m => polling.has(m)), 0),
    duplicates: sum(r => r.duplicates),
    orderViolations: sum(r => r.orderViolations),
    errors: sum(r => r.errors),
    polls: { ...polls, answersPerS: round(polls.answers / windowS, 0), eventsPerAnswer: round(polls.events / Math.max(1, polls.answers), 2) }
  }
}

function signalsFigures (results: PhaseResult[], rounds: Round[], acked: number): SignalsFigures | null {
  const all = results.map(r => r.signals).filter((x): x is SignalsResult => x !== undefined)
  if (all.length === 0) return null
  const total = (f: (x: SignalsResult) => number): number => all.reduce((acc, x) => acc + f(x), 0)
  const per = (n: number): number => round(n / Math.max(1, acked), 3)
  const counted = rounds.every(r => r.writes !== null)
  const storeWrites = counted ? rounds.reduce((acc, r) => acc + (r.writes as number), 0) : null
  const sums: SignalsResult = {
    receiptsSent: total(x => x.receiptsSent),
    typingSent: total(x => x.typingSent),
    inboxSummaries: total(x => x.inboxSummaries),
    ownMarkers: total(x => x.ownMarkers),
    convSummaries: total(x => x.convSummaries)
  }
  return {
    ...sums,
    receiptsSentPerMsg: per(sums.receiptsSent),
    typingPerMsg: per(sums.typingSent),
    convSummariesPerMsg: per(sums.convSummaries),
    inboxSummariesPerMsg: per(sums.inboxSummaries),
    ownMarkersPerMsg: per(sums.ownMarkers),
    storeWrites,
    storeWritesPerMsg: storeWrites !== null ? per(storeWrites) : null
  }
}
