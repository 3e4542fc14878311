// Runs the real `threadline` binary (clients/cli/threadline.mjs, what package.json's "bin"
// names) as a child process against a test node: one-shot runs to completion, long-running
// ones (tail, chat) with their output read line by line.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Threadline } from '../../broker/server.js'
import { DEFAULT_WAIT_MS, withTimeout } from './wait.js'

interface Teardownable { teardown(fn: () => unknown): void }

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN = path.join(root, 'clients', 'cli', 'threadline.mjs')

/** What the CLI is told through the environment: the node's URL and the user's token. */
export function cliEnv (node: Pick<Threadline, 'httpPort'> | null, token?: string): Record<string, string> {
  return {
    ...(node !== null ? { THREADLINE_URL: `http://127.0.0.1:${node.httpPort}` } : {}),
    ...(token !== undefined ? { THREADLINE_TOKEN: token } : {})
  }
}

/** The test's environment without anything the CLI reads: each run says what it wants. */
function baseEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('THREADLINE_')) env[k] = v
  return env
}

export interface CliRun { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

export interface RunOptions { env?: Record<string, string>, stdin?: string, timeoutMs?: number }

/** Runs `threadline <args>` to its end; a run that outlives `timeoutMs` is killed and fails the wait. */
export function runCli (args: string[], opts: RunOptions = {}): Promise<CliRun> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: root, env: { ...baseEnv(), ...opts.env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdin.end(opts.stdin ?? '')
  const done = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return withTimeout(done, `threadline ${args.join(' ')} to exit (stderr so far: ${JSON.stringify(stderr)})`, opts.timeoutMs ?? DEFAULT_WAIT_MS * 2,
    () => { if (child.exitCode === null) child.kill('SIGKILL') })
}

export interface CliProcess {
  readonly child: ChildProcessWithoutNullStreams
  /** complete lines so far */
  readonly stdout: string[]
  readonly stderr: string[]
  /** Resolves with the first line (already seen or still to come) of the stream that matches. */
  line(stream: 'stdout' | 'stderr', match: RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>
  /** Resolves with the exit once the process is gone. */
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** Starts `threadline <args>` and leaves it running (killed at teardown if still alive). */
export function startCli (t: Teardownable, args: string[], opts: { env?: Record<string, string> } = {}): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: root, env: { ...baseEnv(), ...opts.env } })
  const lines = { stdout: [] as string[], stderr: [] as string[] }
  const waiters = new Set<() => void>()
  for (const name of ['stdout', 'stderr'] as const) {
    let partial = ''
    child[name].on('data', (c: Buffer) => {
      const parts = (partial + c.toString()).split('\n')
      partial = parts.pop() ?? ''
      lines[name].push(...parts)
      for (const wake of waiters) wake()
    })
  }
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.on('close', (code, signal) => {
      resolve({ code, signal })
      for (const wake of waiters) wake()
    })
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const line = (stream: 'stdout' | 'stderr', match: RegExp | ((line: string) => boolean), timeoutMs = DEFAULT_WAIT_MS): Promise<string> => {
    const test = typeof match === 'function' ? match : (l: string) => match.test(l)
    let wake = (): void => {}
    const found = new Promise<string>((resolve, reject) => {
      wake = () => {
        const hit = lines[stream].find(test)
        if (hit !== undefined) resolve(hit)
        else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`threadline exited without printing a matching line on ${stream}: ${JSON.stringify(lines)}`))
      }
      waiters.add(wake)
      wake()
    })
    return withTimeout(found, `a line matching ${String(match)} on ${stream} of threadline ${args.join(' ')} (so far: ${JSON.stringify(lines[stream])})`, timeoutMs,
      () => waiters.delete(wake))
  }
  return { child, stdout: lines.stdout, stderr: lines.stderr, line, exited }
}
