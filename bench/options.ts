// `npm run bench -- [flags]`: parsed with node:util parseArgs, every value checked once;
// a bad flag exits 2 with a message that names it.
import { parseArgs } from 'node:util'
import type { ReceiptPattern, Target } from './protocol.js'

export type Mode = 'max' | 'rate' | 'group'
/**
 * `default`: the send path against raw Aedes; `signals`: a group with receipts and typing,
 * coalescing on and off; `longpoll`: deliveries over held HTTP polls next to MQTT ones;
 * `connections`: memory and connect rate of idle sessions against raw Aedes
 */
export type ScenarioName = 'default' | 'signals' | 'longpoll' | 'connections'
const SCENARIOS: readonly ScenarioName[] = ['default', 'signals', 'longpoll', 'connections']

/**
 * The server holds one socket per session and this machine allows 20,000 open files per
 * process: what is left is for its listeners, PostgreSQL pool, files and pipes.
 */
export const MAX_SESSIONS = 19_000
/** sessions per client process, far below its own 20,000 open files */
export const SESSIONS_PER_WORKER = 5_000
const MAX_SESSIONS_PER_WORKER = 15_000

export interface BenchOptions {
  readonly scenario: ScenarioName
  /** signals scenario: members of the group that keep typing */
  readonly typists: number
  /** signals scenario: what each member answers each message with */
  readonly receipts: ReceiptPattern
  /** longpoll scenario: long-poll clients (each its own user, queue and connection, one poll always held) */
  readonly polls: number
  /** longpoll scenario: how long a poll asks to be held when nothing waits (s) */
  readonly pollTimeoutS: number
  /** connections scenario: idle sessions per target */
  readonly connections: number
  /** connections scenario: sessions connecting at once, over all client processes */
  readonly connectConcurrency: number
  /** connections scenario: the sessions' MQTT keepalive (s) */
  readonly keepaliveS: number
  /** run Threadline's sources through tsx instead of tsc's build in dist/ (what npm start runs) */
  readonly fromSource: boolean
  readonly pairs: number
  readonly durationS: number
  readonly warmupS: number
  readonly ratePerS: number
  readonly window: number
  readonly workers: number
  readonly groupSize: number
  readonly groupSenders: number
  readonly groupRatePerS: number
  readonly groupDurationS: number
  readonly paddingBytes: number
  readonly drainS: number
  readonly quietS: number
  readonly rounds: number
  readonly targets: readonly Target[]
  readonly modes: readonly Mode[]
  readonly cpuProf: boolean
  readonly pgSample: boolean
  readonly verbose: boolean
  readonly outDir: string
}

export class UsageError extends Error {}

export const USAGE = `usage: npm run bench -- [options]

  --scenario NAME      default: Threadline vs raw Aedes, max/rate/group   (default)
                       signals: the group with delivered + read receipts from
                       every member and some typing, Threadline with
                       THREADLINE_RECEIPT_WINDOW_MS=500 next to =0 and next to
                       the group without signals (the CPU per message they add);
                       raw Aedes with and without the same publishes; uses the
                       --group-* options, --rounds, --workers and --targets
                       longpoll: --polls 3-member groups (MQTT sender, MQTT
                       recipient, long-poll recipient) at --rate sends/s, next
                       to the same groups with the third member on MQTT and
                       with no device; memory per held poll; uses --rate
                       (default 500 there), --duration, --warmup, --rounds,
                       --workers, --drain
                       connections: --connections idle persistent sessions
                       (clean=false, own user and device, real token, inbox
                       subscribed at QoS 1) on Threadline, then the same on raw
                       Aedes: server memory per session and connect rate; uses
                       --workers (default 1 per ${SESSIONS_PER_WORKER.toLocaleString('en')} sessions, at least 2),
                       --rounds (default 1), --quiet, --targets
  --typists N          signals: members that type (every 3 s)            (default 25)
  --receipts both|read signals: each member answers each message with    (default both)
                       delivered + read, or read alone (as the SDK does
                       for an open conversation)
  --polls N            longpoll: long-poll clients = groups per variant  (default 200)
  --poll-timeout S     longpoll: how long an idle poll is held           (default 30)
  --connections N      connections: sessions per target, ≤ ${MAX_SESSIONS.toLocaleString('en')}        (default 10000)
  --connect-concurrency C
                       connections: sessions connecting at once, over  (default 100)
                       all client processes
  --keepalive S        connections: the sessions' MQTT keepalive         (default 60)

  --pairs N            1:1 conversations, both users connected            (default 50)
  --duration S         measured seconds per max/rate phase               (default 15)
  --warmup S           seconds of the same load before measuring         (default 3)
  --rate R             offered sends/s in the rate phase, all pairs      (default 2000)
  --window W           un-PUBACKed sends per sender in the max phase     (default 20)
  --workers K          load-generating processes                         (default 2)
  --group-size G       members of the fan-out group, all connected       (default 250)
  --group-senders S    members of the group that send                    (default 4)
  --group-rate R       sends/s into the group, all senders together      (default 20)
  --group-duration S   measured seconds of the group phase               (default 10)
  --padding B          filler bytes in each text                         (default 40)
  --drain S            max wait for outstanding acks/deliveries          (default 10)
  --rounds N           measured rounds per phase and target, alternating   (default 3)
                       between targets (ABBA); --duration is split over them
  --quiet S            before each phase, wait up to S s for other jobs   (default 5)
                       on the machine to use < 25% of a core
  --targets LIST       threadline,raw-aedes                              (default both)
  --modes LIST         max,rate,group                                    (default all)
  --from-source        run Threadline's TypeScript through tsx instead of tsc's
                       build (dist/, as npm start runs it, the default); tsx's
                       keepNames costs memory per closure and CPU per call
  --cpu-prof           run both brokers with node --cpu-prof (<out>/profiles/CPU.*.<pid>.*)
  --pg-sample          sample pg_stat_activity every 5 ms: where a batch's time goes
  --verbose            echo the servers' output
  --out DIR            where latest.json and latest.md go                (default bench/results)
  --help`

function int (values: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  const text = String(raw)
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name}: expected a whole number, got ${JSON.stringify(text)}`)
  const n = Number(text)
  if (n < min || n > max) throw new UsageError(`--${name}: must be between ${min} and ${max}, got ${n}`)
  return n
}

/** One of `allowed`; the first when not given. */
function oneOf<T extends string> (values: Record<string, unknown>, name: string, allowed: readonly [T, ...T[]]): T {
  const raw = values[name]
  if (raw === undefined) return allowed[0]
  if (!(allowed as readonly unknown[]).includes(raw)) throw new UsageError(`--${name}: ${JSON.stringify(raw)} is not one of ${allowed.join(', ')}`)
  return raw as T
}

function list<T extends string> (values: Record<string, unknown>, name: string, allowed: readonly T[]): T[] {
  const raw = values[name]
  if (raw === undefined) return [...allowed]
  const items = String(raw).split(',').map(s => s.trim()).filter(s => s !== '')
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) throw new UsageError(`--${name}: ${JSON.stringify(item)} is not one of ${allowed.join(', ')}`)
  }
  if (items.length === 0) throw new UsageError(`--${name}: name at least one of ${allowed.join(', ')}`)
  return [...new Set(items)] as T[]
}

/** Throws UsageError for anything wrong; answers null for --help. */
export function parseOptions (argv: string[]): BenchOptions | null {
  let values: Record<string, unknown>
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        scenario: { type: 'string' },
        typists: { type: 'string' },
        receipts: { type: 'string' },
        polls: { type: 'string' },
        'poll-timeout': { type: 'string' },
        connections: { type: 'string' },
        'connect-concurrency': { type: 'string' },
        keepalive: { type: 'string' },
        'from-source': { type: 'boolean' },
        pairs: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        rate: { type: 'string' },
        window: { type: 'string' },
        workers: { type: 'string' },
        'group-size': { type: 'string' },
        'group-senders': { type: 'string' },
        'group-rate': { type: 'string' },
        'group-duration': { type: 'string' },
        padding: { type: 'string' },
        drain: { type: 'string' },
        quiet: { type: 'string' },
        rounds: { type: 'string' },
        targets: { type: 'string' },
        modes: { type: 'string' },
        'cpu-prof': { type: 'boolean' },
        'pg-sample': { type: 'boolean' },
        verbose: { type: 'boolean' },
        out: { type: 'string' },
        help: { type: 'boolean' }
      }
    }))
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (values.help === true) return null
  const groupSize = int(values, 'group-size', 250, 2, 5000)
  const scenario = values.scenario === undefined ? 'default' : String(values.scenario)
  if (!(SCENARIOS as readonly string[]).includes(scenario)) throw new UsageError(`--scenario: ${JSON.stringify(scenario)} is not one of ${SCENARIOS.join(', ')}`)
  // a tenth of them open before the baseline: at least one, and some after it
  const connections = int(values, 'connections', 10_000, 10, MAX_SESSIONS)
  const sessionWorkers = Math.max(2, Math.ceil(connections / SESSIONS_PER_WORKER))
  const workers = int(values, 'workers', scenario === 'connections' ? sessionWorkers : 2, 1, 16)
  if (scenario === 'connections' && Math.ceil(connections / workers) > MAX_SESSIONS_PER_WORKER) {
    throw new UsageError(`--workers: ${workers} client processes would hold ${Math.ceil(connections / workers)} sessions each; at most ${MAX_SESSIONS_PER_WORKER} (open files)`)
  }
  const opts: BenchOptions = {
    scenario: scenario as ScenarioName,
    typists: int(values, 'typists', 25, 0, groupSize),
    receipts: oneOf(values, 'receipts', ['both', 'read'] as const),
    // each is a socket in the long-poll worker and three users of its variant's groups
    polls: int(values, 'polls', 200, 1, 5000),
    pollTimeoutS: int(values, 'poll-timeout', 30, 1, 90),
    connections,
    connectConcurrency: int(values, 'connect-concurrency', 100, 1, 2000),
    keepaliveS: int(values, 'keepalive', 60, 10, 3600),
    fromSource: values['from-source'] === true,
    // every pair is two connections: stay well inside ~20,000 open files per process
    pairs: int(values, 'pairs', 50, 1, 4000),
    durationS: int(values, 'duration', 15, 1, 600),
    warmupS: int(values, 'warmup', 3, 0, 120),
    ratePerS: int(values, 'rate', scenario === 'longpoll' ? 500 : 2000, 1, 1_000_000),
    window: int(values, 'window', 20, 1, 1000),
    workers,
    groupSize,
    groupSenders: int(values, 'group-senders', 4, 1, groupSize),
    groupRatePerS: int(values, 'group-rate', 20, 1, 100_000),
    groupDurationS: int(values, 'group-duration', 10, 1, 600),
    paddingBytes: int(values, 'padding', 40, 0, 3900),
    drainS: int(values, 'drain', 10, 1, 300),
    quietS: int(values, 'quiet', 5, 0, 600),
    rounds: int(values, 'rounds', scenario === 'connections' ? 1 : 3, 1, 20),
    targets: list(values, 'targets', ['threadline', 'raw-aedes'] as const),
    modes: list(values, 'modes', ['max', 'rate', 'group'] as const),
    cpuProf: values['cpu-prof'] === true,
    pgSample: values['pg-sample'] === true,
    verbose: values.verbose === true,
    outDir: typeof values.out === 'string' && values.out !== '' ? values.out : 'bench/results'
  }
  return Object.freeze(opts)
}
