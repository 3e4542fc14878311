// `npm test`: start throwaway PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL point at
// servers already), make a test CA (services/tls.ts), find (or install) chromium when the
// browser tests are in the run (services/chromium.ts) and haproxy when the deployment tests
// are (services/haproxy.ts), run tap with any extra CLI args, print
// "N passed, M failed", stop everything.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureChromium, runsBrowserTests } from './services/chromium.js'
import { ensurePackages } from './services/debian.js'
import { ensureHaproxy, runsHaproxyTests } from './services/haproxy.js'
import { startPostgres } from './services/postgres.js'
import { startRedis } from './services/redis.js'
import { makeTestCa } from './services/tls.js'
import { type Defer, UsageError, signalExitCode } from './services/util.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const cleanups: Array<() => Promise<unknown>> = []
const defer: Defer = fn => { cleanups.push(fn) }
// A reader that goes away (`npm test | head`) must not crash us before the services stop.
process.stdout.on('error', () => {})

// On a signal we don't exit on the spot: tap must wind down first, then the services stop.
let interrupted: NodeJS.Signals | undefined
let tap: ChildProcess | undefined
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (!interrupted) console.error(`\n[test] ${sig}: stopping tests and services`)
    interrupted = sig
    tap?.kill(sig)
  })
}
/** Called between startup steps so an interrupt doesn't go on to start the next service. */
function checkInterrupted (): void {
  if (interrupted) throw new Error(`interrupted by ${interrupted}`)
}

async function main (args: string[]): Promise<number> {
  const env = { ...process.env }
  await ensurePackages({ postgres: !env.DATABASE_URL, redis: !env.REDIS_URL })
  if (!env.DATABASE_URL) {
    checkInterrupted()
    env.DATABASE_URL = await startPostgres(defer)
    console.error(`[test] PostgreSQL ready at ${env.DATABASE_URL}`)
  }
  if (!env.REDIS_URL) {
    checkInterrupted()
    env.REDIS_URL = await startRedis(defer)
    console.error(`[test] Redis ready at ${env.REDIS_URL}`)
  }
  checkInterrupted()
  // Node reads NODE_EXTRA_CA_CERTS only at process start: made here, inherited by every test process
  const ca = await makeTestCa(defer, env.NODE_EXTRA_CA_CERTS)
  env.NODE_EXTRA_CA_CERTS = ca.caBundle
  env.TEST_TLS_DIR = ca.dir
  checkInterrupted()
  if (runsBrowserTests(args, root) && !env.THREADLINE_TEST_CHROMIUM) {
    env.THREADLINE_TEST_CHROMIUM = await ensureChromium()
    console.error(`[test] browser tests use ${env.THREADLINE_TEST_CHROMIUM}`)
  }
  checkInterrupted()
  if (runsHaproxyTests(args, root) && !env.THREADLINE_TEST_HAPROXY) {
    env.THREADLINE_TEST_HAPROXY = await ensureHaproxy()
    console.error(`[test] deployment tests use ${env.THREADLINE_TEST_HAPROXY}`)
  }
  checkInterrupted()
  return runTap(args, env)
}

function runTap (args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  // The local bin rather than npx: npx would go to the registry if node_modules is incomplete.
  const bin = path.join(root, 'node_modules', '.bin', 'tap')
  if (!existsSync(bin)) throw new UsageError('tap is not installed: run `npm ci` first')
  // We pipe tap's stdout, so it can't see the terminal: keep its colored report for humans.
  const color = process.stdout.isTTY ? ['--color'] : []
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...color, ...args], { cwd: root, env, stdio: ['inherit', 'pipe', 'inherit'] })
    tap = child
    let tail = ''
    const failures = new FailureLog()
    child.stdout!.setEncoding('utf8')
    child.stdout!.on('data', (chunk: string) => {
      process.stdout.write(chunk)
      failures.feed(chunk)
      tail = (tail + chunk).slice(-16_384)
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      const exit = code ?? signalExitCode(signal)
      process.stdout.write(`${tail.endsWith('\n') ? '' : '\n'}${failures.report()}${summary(tail, exit)}\n`)
      resolve(exit)
    })
  })
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g

/**
 * Every `not ok` line of the run, nested ones too, repeated at the very end: a CI log is often
 * read from its tail only, and a failure 5,000 lines up is otherwise invisible there.
 */
class FailureLog {
  #partial = ''
  readonly #lines: string[] = []
  #dropped = 0

  feed (chunk: string): void {
    const lines = (this.#partial + chunk).split('\n')
    this.#partial = lines.pop() ?? ''
    for (const line of lines) {
      const plain = line.replace(ANSI, '')
      if (!/^\s*not ok \d/.test(plain)) continue
      // bounded: a run where everything fails still ends with a readable list
      if (this.#lines.length < 200) this.#lines.push(plain.trimEnd())
      else this.#dropped++
    }
  }

  report (): string {
    if (this.#lines.length === 0) return ''
    const more = this.#dropped ? `\n  … and ${this.#dropped} more` : ''
    return `\n[test] what failed (indented: the failing assertion inside the file or subtest below it):\n${this.#lines.join('\n')}${more}\n\n`
  }
}

/** "N passed, M failed" from tap's closing `# { total: X, pass: Y, fail: Z }` line. */
function summary (output: string, exit: number): string {
  const plain = output.replace(ANSI, '')
  const last = [...plain.matchAll(/^# \{ (.*) \}\s*$/gm)].at(-1)
  if (last?.[1] !== undefined) {
    const counts = new Map([...last[1].matchAll(/(\w+): (\d+)/g)].map(m => [m[1], Number(m[2])]))
    if (exit !== 0 && !counts.get('fail')) console.error(`[test] tap exited with code ${exit}`)
    return `${counts.get('pass') ?? 0} passed, ${counts.get('fail') ?? 0} failed`
  }
  // No summary (tap crashed, was killed, or bailed out early): all we know is the exit code.
  console.error(`[test] tap printed no summary; it exited with code ${exit}`)
  return exit === 0 ? '0 passed, 0 failed' : '0 passed, 1 failed'
}

let code: number
try {
  code = await main(process.argv.slice(2))
} catch (err) {
  if (interrupted) code = signalExitCode(interrupted)
  else {
    console.error(`[test] ${err instanceof UsageError ? err.message : err instanceof Error ? err.stack : err}`)
    code = 1
  }
}
if (interrupted && code === 0) code = signalExitCode(interrupted)
for (const fn of cleanups.reverse()) {
  try {
    await fn()
  } catch (err) {
    console.error('[test] cleanup failed:', err)
  }
}
process.exit(code)
