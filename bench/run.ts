// `npm run bench`: Threadline (real server child + throwaway durable PostgreSQL) and a raw
// Aedes 1.2 broker, driven by the same MQTT.js load from separate worker processes, side by
// side in one run: max throughput, a paced 2,000 msg/s, and a 250-member group fan-out.
// Prints a table; writes <out>/latest.json and <out>/latest.md. See bench/README.md.
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'
import pg from 'pg'
import { createTokenService } from '../core/tokens.js'
import { ensurePackages, pgBinDir } from '../test/services/debian.js'
import { startPostgres } from '../test/services/postgres.js'
import { type Defer, freePort, sleep } from '../test/services/util.js'
import { type BenchOptions, USAGE, UsageError, parseOptions } from './options.js'
import { type PhasePlan, type PhaseReport, type Round, type Servers, runRound, summarize } from './phase.js'
import { startChild, waitForPort, waitForQuiet, type Child } from './procs.js'
import { type BenchReport, markdown, table, verdicts } from './report.js'
import { type ConnectionsRound, insertUsers, measureSessions, sessionSpecs } from './connections.js'
import { type ConnectionsReport, connectionsMarkdown, connectionsRatio, connectionsTable, summarizeConnections } from './connections-report.js'
import { type HeldPollMemory, measureHeldPolls } from './longpoll-memory.js'
import { type LongPollReport, longPollMarkdown, longPollTable } from './longpoll-report.js'
import {
  type LongPollVariant, type Scenario, LONGPOLL_VARIANTS, groupScenario, insertConversations, longPollScenario, pairsScenario, signalsScenario, userSenderMap
} from './scenario.js'
import { NO_SIGNALS, type SignalsReport, signalsMarkdown, signalsOverhead, signalsTable } from './signals-report.js'
import { WorkerPool } from './workers.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const SECRET = 'bench-secret-0123456789abcdef-0123456789'
const STARTUP_TIMEOUT_MS = 60_000
const SETUP_TIMEOUT_MS = 120_000

const cleanups: Array<() => Promise<unknown>> = []
const defer: Defer = fn => { cleanups.push(fn) }
const log = (msg: string): void => { process.stderr.write(`[bench] ${msg}\n`) }

let interrupted: NodeJS.Signals | undefined
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted === undefined) log(`${sig}: stopping`)
    interrupted = sig
    void runCleanups().then(() => process.exit(130))
  })
}
function checkInterrupted (): void {
  if (interrupted !== undefined) throw new Error(`interrupted by ${interrupted}`)
}

async function runCleanups (): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn()
    } catch (err) {
      log(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
}

function nodeArgs (script: string[], profDir: string | null, tsx = true): string[] {
  return [...(tsx ? ['--import', 'tsx'] : []), ...(profDir !== null ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), ...script]
}

interface RunningTarget {
  servers: Servers
  url: string
  /** the HTTP API's base URL (Threadline only) */
  httpUrl: string | null
  child: Child
  databaseUrl: string | null
}

interface TargetExtras {
  /** more server environment (THREADLINE_RECEIPT_WINDOW_MS) */
  env?: Record<string, string>
  /** PostgreSQL settings (a library to preload) */
  pgSettings?: Record<string, string>
  label?: string
  /** counts the store writes under study with this connection to the target's database */
  countWrites?: (stats: pg.Client) => Promise<number>
  /** a plain ES module the server imports first (bench/heap-probe.ts bundled: bundleHeapProbe) */
  preload?: string
}

async function startThreadlineTarget (opts: BenchOptions, profDir: string | null, extras: TargetExtras = {}): Promise<RunningTarget> {
  const databaseUrl = await startPostgres(defer, extras.pgSettings)
  log(`PostgreSQL ready at ${databaseUrl} (fsync on, synchronous_commit on)`)
  const stats = new pg.Client({ connectionString: databaseUrl })
  await stats.connect()
  defer(() => stats.end())
  const { rows } = await stats.query<{ data_directory: string, fsync: string, synchronous_commit: string }>(
    "SELECT current_setting('data_directory') AS data_directory, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit")
  const settings = rows[0]!
  if (settings.fsync !== 'on' || settings.synchronous_commit !== 'on') throw new Error(`PostgreSQL is not durable: fsync=${settings.fsync} synchronous_commit=${settings.synchronous_commit}`)
  const pgRootPid = Number((await readFile(path.join(settings.data_directory, 'postmaster.pid'), 'utf8')).split('\n')[0])

  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'threadline-bench-'))
  defer(() => rm(dataDir, { recursive: true, force: true }))
  const mqttPort = await freePort()
  const httpPort = await freePort()
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: databaseUrl,
    THREADLINE_MQTT_PORT: String(mqttPort),
    THREADLINE_HTTP_PORT: String(httpPort),
    THREADLINE_HOST: '127.0.0.1',
    THREADLINE_JWT_SECRET: SECRET,
    THREADLINE_LOG_LEVEL: 'warn',
    THREADLINE_DATA_DIR: dataDir,
    // no rate limit may shape the load: the bench measures the send path itself
    THREADLINE_SEND_RATE: '1000000',
    THREADLINE_SEND_BURST: '1000000',
    THREADLINE_MAX_GROUP_MEMBERS: String(Math.max(256, opts.groupSize)),
    ...extras.env
  }
  // tsc's build under plain node, as `npm start` runs it (main() built it); --from-source: the sources through tsx
  const script = [...(extras.preload !== undefined ? ['--import', extras.preload] : []), opts.fromSource ? 'broker/main.ts' : 'dist/broker/main.js']
  const child = startChild('threadline', process.execPath, nodeArgs(script, profDir, opts.fromSource), { cwd: root, env, verbose: opts.verbose })
  defer(() => child.stop())
  await waitForPort(mqttPort, child, STARTUP_TIMEOUT_MS)
  log(`${extras.label ?? 'Threadline'} up (pid ${child.pid}, MQTT 127.0.0.1:${mqttPort})`)
  const countWrites = extras.countWrites
  return {
    servers: {
      target: 'threadline',
      brokerPid: child.pid,
      pgRootPid,
      pgStats: stats,
      ...(extras.label !== undefined ? { label: extras.label } : {}),
      ...(countWrites !== undefined ? { countWrites: () => countWrites(stats) } : {})
    },
    url: `mqtt://127.0.0.1:${mqttPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    child,
    databaseUrl
  }
}

async function startRawTarget (opts: BenchOptions, profDir: string | null, preload?: string): Promise<RunningTarget> {
  const port = await freePort()
  const script = [...(preload !== undefined ? ['--import', preload] : []), 'bench/raw-aedes.ts', String(port)]
  const child = startChild('raw-aedes', process.execPath, nodeArgs(script, profDir), { cwd: root, env: process.env, verbose: opts.verbose })
  defer(() => child.stop())
  await waitForPort(port, child, STARTUP_TIMEOUT_MS)
  log(`raw Aedes up (pid ${child.pid}, MQTT 127.0.0.1:${port})`)
  return { servers: { target: 'raw-aedes', brokerPid: child.pid, pgRootPid: null, pgStats: null }, url: `mqtt://127.0.0.1:${port}`, httpUrl: null, child, databaseUrl: null }
}

/** One target with its scenario's clients connected in their own worker processes. */
interface Rig { t: RunningTarget, scenario: Scenario, pool: WorkerPool }

/**
 * Connects every target's clients for one scenario (all targets at once, so phases of
 * different targets can alternate), runs fn, then disconnects them.
 */
async function withRigs (opts: BenchOptions, targets: RunningTarget[], scenarioFor: (t: RunningTarget) => Scenario, fn: (rigs: Rig[]) => Promise<void>): Promise<void> {
  const rigs: Rig[] = []
  // a dying server's exit may be reported just after its clients' errors: name it
  const serverDied = async (err: unknown): Promise<never> => {
    await Promise.race([Promise.all(targets.map(t => t.child.exited)), sleep(1000)])
    const dead = targets.find(t => t.child.exitStatus() !== null)
    if (dead !== undefined) throw new Error(`${dead.child.name} ended (${dead.child.exitStatus()}) during the run; its last output:\n${dead.child.tail()}`, { cause: err })
    throw err
  }
  try {
    for (const t of targets) {
      const scenario = scenarioFor(t)
      if (t.databaseUrl !== null) await insertConversations(t.databaseUrl, scenario.convs, scenario.name === 'pairs' ? 'direct' : 'group')
      // long-poll clients live in one more worker, after the MQTT ones
      const pool = WorkerPool.start(opts.workers, root, scenario.clients.some(c => c.via === 'longpoll'))
      rigs.push({ t, scenario, pool })
      const connectMs = await pool.setup(w => ({
        cmd: 'setup',
        target: t.servers.target,
        url: w < opts.workers ? t.url : t.httpUrl ?? '',
        clients: scenario.clients.filter(c => c.worker === w).map(({ worker: _, ...spec }) => spec),
        senders: scenario.senders.filter(s => scenario.clients.find(c => c.user === s.user)?.worker === w),
        senderUsers: userSenderMap(scenario),
        padding: opts.paddingBytes,
        ...(scenario.signals !== undefined ? { signals: scenario.signals } : {}),
        ...(w < opts.workers ? {} : { longpoll: { timeoutS: opts.pollTimeoutS } })
      }), SETUP_TIMEOUT_MS)
      log(`${t.servers.label ?? t.servers.target}: ${scenario.clients.length} clients connected and subscribed in ${connectMs} ms`)
    }
    await fn(rigs)
  } catch (err) {
    await serverDied(err)
  } finally {
    await Promise.all(rigs.map(r => r.pool.close()))
  }
}

/**
 * One phase for every target: `--rounds` measured rounds per target, alternating between
 * targets in ABBA order, so bursts of other load on the machine land on both sides alike;
 * the rounds of a target are then summed into one report.
 */
async function phaseAcross (opts: BenchOptions, rigs: Rig[], plan: PhasePlan): Promise<PhaseReport[]> {
  checkInterrupted()
  const othersBefore = opts.quietS > 0 ? await waitForQuiet(opts.quietS, 25) : null
  if (othersBefore !== null && othersBefore >= 25) log(`other jobs on this machine use ${othersBefore}% of a core: figures will suffer`)
  const what = plan.shape.kind === 'window' ? `window ${plan.shape.window}/sender` : `${plan.shape.ratePerS} sends/s`
  log(`${plan.mode}: ${what}, ${opts.rounds} round(s) per target, ${plan.warmupS} s warm-up + ${plan.durationS} s measured per target`)
  const rounds = rigs.map((): Round[] => [])
  for (let i = 0; i < opts.rounds; i++) {
    const order = i % 2 === 0 ? [...rigs.keys()] : [...rigs.keys()].reverse()
    for (const k of order) {
      checkInterrupted()
      const r = rigs[k] as Rig
      // the server must still be there, or every figure would be nonsense
      if (r.t.child.exitStatus() !== null) throw new Error(`${r.t.child.name} ended (${r.t.child.exitStatus()}):\n${r.t.child.tail()}`)
      const warmupS = i === 0 ? plan.warmupS : Math.min(1, plan.warmupS)
      rounds[k]?.push(await runRound(r.t.servers, r.pool, r.scenario, plan, warmupS, plan.durationS / opts.rounds))
    }
  }
  return rigs.map((r, k) => {
    const report = summarize(r.t.servers, r.pool, r.scenario, plan, rounds[k] ?? [])
    report.cpu.othersBeforePct = othersBefore
    log(`${report.label} ${plan.mode}: ${report.msgPerS} msg/s, p50 ${report.latencyMs.p50} ms, p99 ${report.latencyMs.p99} ms, ` +
      `lost ${report.integrity.lost}, broker ${report.cpu.brokerPct}%` + (report.cpu.pgPct !== null ? `, PG ${report.cpu.pgPct}%` : '') +
      `, other jobs ${report.cpu.othersPct}%`)
    return report
  })
}

/** The group phase: open loop at --group-rate, a short warm-up. */
function groupPlan (opts: BenchOptions): PhasePlan {
  return {
    mode: 'group',
    shape: { kind: 'rate', ratePerS: opts.groupRatePerS },
    warmupS: Math.min(opts.warmupS, 2),
    durationS: opts.groupDurationS,
    drainS: opts.drainS,
    pgSample: opts.pgSample
  }
}

/**
 * Both targets run at the same time (an idle broker costs nothing) and their rounds
 * alternate, so a change in the machine's other load hits both sides alike.
 */
async function benchAll (opts: BenchOptions, profDir: string | null): Promise<PhaseReport[]> {
  const targets: RunningTarget[] = []
  for (const target of opts.targets) {
    checkInterrupted()
    targets.push(target === 'threadline' ? await startThreadlineTarget(opts, profDir) : await startRawTarget(opts, profDir))
  }
  const tokens = createTokenService(SECRET)
  const token = (user: string): string => tokens.sign({ sub: user }, 6 * 3600)
  const reports: PhaseReport[] = []
  const base = { warmupS: opts.warmupS, durationS: opts.durationS, drainS: opts.drainS, pgSample: opts.pgSample }
  const pairPlans: PhasePlan[] = [
    ...(opts.modes.includes('max') ? [{ mode: 'max', shape: { kind: 'window', window: opts.window }, ...base } as const] : []),
    ...(opts.modes.includes('rate') ? [{ mode: 'rate', shape: { kind: 'rate', ratePerS: opts.ratePerS }, ...base } as const] : [])
  ]
  if (pairPlans.length > 0) {
    await withRigs(opts, targets, t => pairsScenario(t.servers.target, opts.pairs, opts.workers, token), async (rigs) => {
      for (const plan of pairPlans) reports.push(...await phaseAcross(opts, rigs, plan))
    })
  }
  if (opts.modes.includes('group')) {
    const plan = groupPlan(opts)
    await withRigs(opts, targets, t => groupScenario(t.servers.target, opts.groupSize, opts.groupSenders, opts.workers, token), async (rigs) => {
      reports.push(...await phaseAcross(opts, rigs, plan))
    })
  }
  // a graceful stop also writes the --cpu-prof profiles
  await Promise.all(targets.map(t => t.child.stop()))
  return reports
}

/** The receipts' one write statement (core/receipts/repo.ts), as pg_stat_statements keeps it. */
const RECEIPT_WRITE_LIKE = '%UPDATE members m%SET delivered_seq = GREATEST%'
/** The receipt windows compared by --scenario signals: the default, and none. */
const SIGNAL_WINDOWS_MS = [500, 0] as const

async function countReceiptWrites (stats: pg.Client): Promise<number> {
  const { rows } = await stats.query<{ n: string }>(
    `SELECT coalesce(sum(calls), 0)::text AS n FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query LIKE $1`, [RECEIPT_WRITE_LIKE])
  return Number(rows[0]?.n ?? 0)
}

/**
 * --scenario signals: the group phase with receipts and typing, on Threadline servers that
 * differ only in THREADLINE_RECEIPT_WINDOW_MS, next to one more identical server carrying the
 * same group without any signals (what the signals' extra CPU per message is measured
 * against); with raw-aedes in --targets, two raw Aedes brokers the same way: the group
 * alone, and with the same receipts and typing publishes (to topics nobody subscribes to,
 * what a plain broker's transport alone costs). Rounds alternate ABBA over all of them as in
 * the default bench. Receipt writes are counted by PostgreSQL (pg_stat_statements,
 * preloaded into each throwaway cluster).
 */
async function benchSignals (opts: BenchOptions, profDir: string | null): Promise<PhaseReport[]> {
  const targets: RunningTarget[] = []
  const withSignals = new Set<RunningTarget>()
  if (opts.targets.includes('threadline')) {
    for (const windowMs of [...SIGNAL_WINDOWS_MS, null]) {
      checkInterrupted()
      const target = await startThreadlineTarget(opts, profDir, {
        env: { THREADLINE_RECEIPT_WINDOW_MS: String(windowMs ?? SIGNAL_WINDOWS_MS[0]) },
        pgSettings: { shared_preload_libraries: 'pg_stat_statements' },
        label: windowMs !== null ? `threadline window=${windowMs}` : NO_SIGNALS.threadline,
        countWrites: countReceiptWrites
      })
      await target.servers.pgStats?.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
      targets.push(target)
      if (windowMs !== null) withSignals.add(target)
    }
  }
  if (opts.targets.includes('raw-aedes')) {
    for (const signals of [true, false]) {
      checkInterrupted()
      const raw = await startRawTarget(opts, profDir)
      const target = { ...raw, servers: { ...raw.servers, label: signals ? 'raw-aedes signals' : NO_SIGNALS['raw-aedes'] } }
      targets.push(target)
      if (signals) withSignals.add(target)
    }
  }
  const tokens = createTokenService(SECRET)
  const token = (user: string): string => tokens.sign({ sub: user }, 6 * 3600)
  const plan = groupPlan(opts)
  const reports: PhaseReport[] = []
  const scenarioFor = (t: RunningTarget): Scenario => withSignals.has(t)
    ? signalsScenario(t.servers.target, opts.groupSize, opts.groupSenders, opts.typists, opts.receipts, opts.workers, token)
    : groupScenario(t.servers.target, opts.groupSize, opts.groupSenders, opts.workers, token)
  await withRigs(opts, targets, scenarioFor, async (rigs) => {
    reports.push(...await phaseAcross(opts, rigs, plan))
  })
  await Promise.all(targets.map(t => t.child.stop()))
  return reports
}

/**
 * --scenario longpoll: one Threadline node, three variants of the same groups side by
 * side (the third member long-polls, is on MQTT, or has no device), their rounds
 * alternating ABBA; before them, the server's memory with the long-poll clients' queues
 * opened and then their polls held.
 */
async function benchLongPoll (opts: BenchOptions, profDir: string | null): Promise<{ phases: PhaseReport[], memory: HeldPollMemory }> {
  const node = await startThreadlineTarget(opts, profDir, { preload: await bundleHeapProbe() })
  // one server, one rig per variant: the label tells the variants apart in the reports
  const targets = LONGPOLL_VARIANTS.map(label => ({ ...node, servers: { ...node.servers, label } }))
  const tokens = createTokenService(SECRET)
  const token = (user: string): string => tokens.sign({ sub: user }, 6 * 3600)
  const plan: PhasePlan = {
    mode: 'rate',
    shape: { kind: 'rate', ratePerS: opts.ratePerS },
    warmupS: opts.warmupS,
    durationS: opts.durationS,
    drainS: opts.drainS,
    pgSample: opts.pgSample
  }
  const phases: PhaseReport[] = []
  const measured: { memory?: HeldPollMemory } = {}
  await withRigs(opts, targets, t => longPollScenario(t.servers.label as LongPollVariant, opts.polls, opts.workers, token), async (rigs) => {
    const polling = rigs.find(r => r.t.servers.label === 'longpoll') as Rig
    const memory = measured.memory = await measureHeldPolls(node.child, polling.pool, opts.workers, opts.polls)
    log(`memory: per queue ${memory.perQueueHeapBytes} B heap / ${memory.perQueueRssBytes} B RSS, ` +
      `per held poll ${memory.perHeldPollHeapBytes} B heap / ${memory.perHeldPollRssBytes} B RSS (${opts.polls} clients)`)
    phases.push(...await phaseAcross(opts, rigs, plan))
  })
  await node.child.stop()
  if (measured.memory === undefined) throw new Error('the long-poll clients never held their polls')
  return { phases, memory: measured.memory }
}

/**
 * Every session comes from 127.0.0.1: the CONNECT limit per address must not shape the
 * load (it is still checked on every CONNECT), and the connection cap must admit them all.
 */
function connectionsEnv (sessions: number): Record<string, string> {
  return {
    THREADLINE_MAX_CONNECTIONS: String(sessions),
    THREADLINE_CONNECT_IP_RATE: '1000000',
    THREADLINE_CONNECT_IP_BURST: '1000000'
  }
}

/**
 * bench/heap-probe.ts as one plain ES module, so a server run without tsx can preload it
 * (esbuild, the server's own dependency; no keepNames, unlike tsx).
 */
async function bundleHeapProbe (): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'threadline-bench-probe-'))
  defer(() => rm(dir, { recursive: true, force: true }))
  const outfile = path.join(dir, 'heap-probe.mjs')
  await esbuild.build({ entryPoints: [path.join(root, 'bench/heap-probe.ts')], bundle: true, platform: 'node', format: 'esm', outfile, logLevel: 'error' })
  return outfile
}

/**
 * --scenario connections: per round and target a fresh server (the heap probe preloaded),
 * --connections idle sessions opened from the client processes and held while the
 * server's memory is read; targets alternate ABBA over --rounds. Threadline gets the
 * sessions' users in its database first and a connection cap that admits them all.
 */
async function benchConnections (opts: BenchOptions, profDir: string | null): Promise<ConnectionsRound[]> {
  const probe = await bundleHeapProbe()
  const tokens = createTokenService(SECRET)
  const specs = sessionSpecs(opts.connections, user => tokens.sign({ sub: user }, 6 * 3600))
  const rounds: ConnectionsRound[] = []
  for (let i = 0; i < opts.rounds; i++) {
    const order = i % 2 === 0 ? opts.targets : [...opts.targets].reverse()
    for (const target of order) {
      checkInterrupted()
      const othersBefore = opts.quietS > 0 ? await waitForQuiet(opts.quietS, 25) : null
      if (othersBefore !== null && othersBefore >= 25) log(`other jobs on this machine use ${othersBefore}% of a core: figures will suffer`)
      const t = target === 'threadline'
        ? await startThreadlineTarget(opts, profDir, { preload: probe, env: connectionsEnv(opts.connections) })
        : await startRawTarget(opts, profDir, probe)
      if (t.databaseUrl !== null) await insertUsers(t.databaseUrl, specs.map(s => s.user))
      const pool = WorkerPool.startConnections(opts.workers, root)
      try {
        const r = await measureSessions(t, pool, specs, opts, i + 1, log)
        r.othersBeforePct = othersBefore
        rounds.push(r)
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err)
        if (t.child.exitStatus() !== null) throw new Error(`${t.child.name} ended (${t.child.exitStatus()}) during the run (${why}); its last output:\n${t.child.tail()}`, { cause: err })
        throw err
      } finally {
        await pool.close()
        await t.child.stop()
      }
    }
  }
  return rounds
}

/** HEAD and the server-side files that differ from it, so a figure can be tied to code. */
function measuredCode (): BenchReport['code'] {
  const git = (args: string[]): string | null => {
    try {
      // trimEnd: porcelain lines start with a status column that may be a space
      return execFileSync('git', args, { cwd: root, encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trimEnd()
    } catch {
      return null
    }
  }
  const status = git(['status', '--porcelain', '--', 'broker', 'core', 'plugins', 'schemas', 'sync-api', 'package-lock.json'])
  return {
    commit: git(['rev-parse', '--short', 'HEAD']),
    modified: status === null || status === '' ? [] : status.split('\n').map(l => l.slice(3))
  }
}

function machine (): BenchReport['machine'] {
  const cpus = os.cpus()
  const bin = pgBinDir()
  const postgres = bin !== undefined ? `PostgreSQL ${path.basename(path.dirname(bin))}` : null
  return { cpus: cpus.length, cpuModel: cpus[0]?.model.trim() ?? 'unknown', node: process.versions.node, postgres, kernel: os.release() }
}

async function main (argv: string[]): Promise<number> {
  let opts: BenchOptions | null
  try {
    opts = parseOptions(argv)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n\n${USAGE}\n`)
      return 2
    }
    throw err
  }
  if (opts === null) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  const startedAt = new Date().toISOString()
  const measured = measuredCode()
  const outDir = path.resolve(root, opts.outDir)
  await mkdir(outDir, { recursive: true })
  const profDir = opts.cpuProf ? path.join(outDir, 'profiles') : null
  if (profDir !== null) await mkdir(profDir, { recursive: true })
  await ensurePackages({ postgres: opts.targets.includes('threadline'), redis: false })
  if (!opts.fromSource && opts.targets.includes('threadline')) {
    log('building the server (tsc -b tsconfig.build.json → dist/, as npm start does)')
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit', timeout: 300_000 })
  }

  if (opts.scenario === 'connections') {
    const rounds = await benchConnections(opts, profDir)
    await runCleanups()
    const summaries = summarizeConnections(rounds)
    const report: ConnectionsReport = {
      startedAt,
      command: ['npm run bench', '--', ...argv].join(' '),
      machine: machine(),
      code: measured,
      options: opts,
      rounds,
      summaries,
      ratio: connectionsRatio(summaries)
    }
    await writeFile(path.join(outDir, 'connections.json'), JSON.stringify(report, null, 2) + '\n')
    await writeFile(path.join(outDir, 'connections.md'), connectionsMarkdown(report) + '\n')
    process.stdout.write(connectionsTable(report) + '\n')
    log(`wrote ${path.relative(root, path.join(outDir, 'connections.json'))} and connections.md`)
    return 0
  }
  const signals = opts.scenario === 'signals'
  const longpoll = opts.scenario === 'longpoll'
  let memory: HeldPollMemory | null = null
  let phases: PhaseReport[]
  if (longpoll) ({ phases, memory } = await benchLongPoll(opts, profDir))
  else phases = signals ? await benchSignals(opts, profDir) : await benchAll(opts, profDir)
  await runCleanups()
  const base: SignalsReport = {
    startedAt,
    command: ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' '),
    machine: machine(),
    code: measured,
    options: opts,
    phases
  }
  // the other scenarios have their own files, so a run of one leaves latest.* as they were
  const name = signals ? 'signals' : longpoll ? 'longpoll' : 'latest'
  let report: SignalsReport | BenchReport | LongPollReport = base
  let md: string
  let text: string
  if (signals) {
    report = { ...base, overhead: signalsOverhead(phases) }
    ;[md, text] = [signalsMarkdown(base), signalsTable(base)]
  } else if (memory !== null) {
    const full: LongPollReport = { ...base, memory }
    report = full
    ;[md, text] = [longPollMarkdown(full), longPollTable(full)]
  } else {
    const full: BenchReport = { ...base, ...verdicts(phases, opts) }
    report = full
    ;[md, text] = [markdown(full), table(full)]
  }
  await writeFile(path.join(outDir, `${name}.json`), JSON.stringify(report, null, 2) + '\n')
  await writeFile(path.join(outDir, `${name}.md`), md + '\n')
  process.stdout.write(text + '\n')
  log(`wrote ${path.relative(root, path.join(outDir, `${name}.json`))} and ${name}.md`)
  return 0
}

let code: number
try {
  code = await main(process.argv.slice(2))
} catch (err) {
  log(`failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  code = 1
}
await runCleanups()
process.exit(code)
