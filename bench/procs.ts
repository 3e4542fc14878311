// Child processes of the bench (servers, load workers) and their CPU time, read from
// /proc: utime + stime of a process (all its threads), and for PostgreSQL the postmaster,
// every live child, and what exited children left in the postmaster's cutime/cstime.
import { type ChildProcess, spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { sleep } from '../test/services/util.js'

/** clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK; 100 on every Linux we run on) */
export const CLK_TCK = 100

export interface ProcStat { ppid: number, ticks: number, childTicks: number }

export function procStat (pid: number): ProcStat | null {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  // comm (field 2) may contain spaces and parentheses: split after its closing paren
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // f[0] is field 3 (state): ppid = 4, utime = 14, stime = 15, cutime = 16, cstime = 17
  const n = (field: number): number => Number(f[field - 3])
  return { ppid: n(4), ticks: n(14) + n(15), childTicks: n(16) + n(17) }
}

/** CPU seconds used so far by one process (all threads). */
export function cpuSeconds (pid: number): number {
  return (procStat(pid)?.ticks ?? 0) / CLK_TCK
}

/** Resident memory of a process in MiB (VmRSS), or NaN when it is gone. */
export function rssMiB (pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m !== null ? Math.round(Number(m[1]) / 1024) : NaN
  } catch {
    return NaN
  }
}

function title (pid: number): string {
  try {
    // PostgreSQL sets its process titles: "postgres: walwriter", "postgres: postgres db 127.0.0.1(5432) idle"
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ')
      .replace(/ \d+\.\d+\.\d+\.\d+\(\d+\).*$/, ' (client backend)').slice(0, 80)
  } catch {
    return `pid ${pid}`
  }
}

/**
 * CPU seconds of a process tree by process title: the root, its live descendants, and
 * under "exited children" what reaped children (e.g. autovacuum workers) left in the
 * root's cutime/cstime.
 */
export function treeCpuBreakdown (root: number): Map<string, number> {
  // A child reaped while /proc is read moves its ticks from its own stat to the root's
  // cutime: read before the move it is counted live, after it in cutime; in between (its
  // stat gone, the root read before) it is not counted at all, and the phase's PostgreSQL
  // CPU came out short, negative now and then. A scan during which the root's cutime moved
  // is read again, so every reading is one consistent snapshot.
  let stats = scanProc()
  for (let retry = 0; retry < 5; retry++) {
    const after = procStat(root)
    if (after === null || after.childTicks === stats.get(root)?.childTicks) break
    stats = scanProc()
  }
  const out = new Map<string, number>()
  const add = (label: string, ticks: number): void => { out.set(label, (out.get(label) ?? 0) + ticks / CLK_TCK) }
  const visit = (pid: number, depth: number): void => {
    const st = stats.get(pid)
    if (st === undefined || depth > 8) return
    add(title(pid), st.ticks)
    add(depth === 0 ? 'exited children' : `${title(pid)} (its exited children)`, st.childTicks)
    for (const [child, cs] of stats) if (cs.ppid === pid) visit(child, depth + 1)
  }
  visit(root, 0)
  return out
}

/** Every process' stat, by pid. */
function scanProc (): Map<number, ProcStat> {
  const stats = new Map<number, ProcStat>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const st = procStat(Number(name))
    if (st !== null) stats.set(Number(name), st)
  }
  return stats
}

/** Whole-machine busy and total jiffies (all cores) from /proc/stat, for "how saturated was the box". */
export function machineTicks (): { busy: number, total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
  const idle = (v[3] ?? 0) + (v[4] ?? 0)
  return { busy: total - idle, total }
}

export interface Child {
  readonly name: string
  readonly proc: ChildProcess
  readonly pid: number
  /** the last lines it printed, for error messages */
  tail(): string
  /** null while running; else how it ended */
  exitStatus(): string | null
  readonly exited: Promise<number | null>
  stop(): Promise<void>
}

/** Spawns a long-running child; its output is kept (a tail) and echoed with a prefix when verbose. */
export function startChild (name: string, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv, cwd?: string, verbose?: boolean }): Child {
  const proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${cmd}`)
  let tail = ''
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-4000)
    if (opts.verbose === true) process.stderr.write(d.toString().replace(/^(?=.)/gm, `[${name}] `))
  }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  let status: string | null = null
  const exited = new Promise<number | null>(resolve => proc.once('exit', (code, signal) => {
    status = code !== null ? `exit code ${code}` : `signal ${signal}`
    resolve(code)
  }))
  let done = false
  void exited.then(() => { done = true })
  return {
    name,
    proc,
    pid: proc.pid,
    tail: () => tail,
    exitStatus: () => status,
    exited,
    async stop () {
      if (done) return
      proc.kill('SIGTERM')
      const forced = setTimeout(() => proc.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(forced)
    }
  }
}

/** Resolves once host:port accepts a TCP connection; rejects if the child exits or time runs out. */
export async function waitForPort (port: number, child: Child, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let exited = false
  void child.exited.then(() => { exited = true })
  for (let attempt = 0; attempt < 10_000 && Date.now() < deadline; attempt++) {
    if (exited) throw new Error(`${child.name} exited during startup:\n${child.tail()}`)
    const ok = await new Promise<boolean>(resolve => {
      const sock = net.connect({ host: '127.0.0.1', port })
      sock.once('connect', () => { sock.destroy(); resolve(true) })
      sock.once('error', () => resolve(false))
    })
    if (ok) return
    await sleep(100)
  }
  throw new Error(`${child.name} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms:\n${child.tail()}`)
}

/**
 * Waits (at most maxS seconds) until the machine's other jobs use less than
 * thresholdPct of one core, sampled over 1 s while the bench itself is idle. Answers the
 * last sample: a shared box can make every figure here meaningless, so it is reported.
 */
export async function waitForQuiet (maxS: number, thresholdPct: number): Promise<number> {
  let busyPct = NaN
  for (let i = 0; i < Math.max(1, maxS); i++) {
    const a = machineTicks()
    await sleep(1000)
    const b = machineTicks()
    busyPct = 100 * (b.busy - a.busy) / CLK_TCK
    if (busyPct < thresholdPct) break
  }
  return Math.round(busyPct)
}
