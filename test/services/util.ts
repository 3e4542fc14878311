// Small process/network helpers shared by the test service starters (no dependencies).
import { spawn } from 'node:child_process'
import { accessSync, constants as fsConstants } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

/** An error whose message is the whole story for the user: printed without a stack. */
export class UsageError extends Error {}

/** Registers cleanup work as soon as the thing it undoes exists; run.ts runs it in reverse. */
export type Defer = (fn: () => Promise<unknown>) => void

export function signalExitCode (signal: NodeJS.Signals | null): number {
  return 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0)
}

export interface RunOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Capture output (to show it only on failure) instead of streaming it to stderr. */
  quiet?: boolean
}

/**
 * Runs a command to completion. Streamed output goes to our stderr, never stdout:
 * stdout carries the test report.
 */
export function run (cmd: string, args: string[], opts: RunOptions = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: opts.quiet ? ['ignore', 'pipe', 'pipe'] : ['ignore', 2, 2],
    })
    let output = ''
    const collect = (d: Buffer) => { output += d.toString() }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code: code ?? signalExitCode(signal), output }))
  })
}

/** Like run(), but a non-zero exit is an error carrying the command's output. */
export async function mustRun (cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const { code, output } = await run(cmd, args, opts)
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with code ${code}\n${output.trimEnd()}`)
  return output
}

/**
 * A free loopback port: bind port 0 and release it. Another process could grab it
 * before the service binds, so starters retry with a new port when startup fails.
 */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/** Path of an executable on PATH (plus the sbin dirs, which non-login root shells may lack). */
export function which (name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin']
  for (const dir of dirs) {
    if (!dir) continue
    const file = path.join(dir, name)
    try {
      accessSync(file, fsConstants.X_OK)
      return file
    } catch { /* not here */ }
  }
  return undefined
}

/**
 * Whether tap's arguments select a test under `dir` (relative to `cwd`): no paths (the
 * whole suite), or a path that is, contains or lies inside `dir`. A run that can't reach
 * those tests needs nothing they need (a browser, HAProxy).
 */
export function runsTestsUnder (args: readonly string[], cwd: string, dir: string): boolean {
  const paths = args.filter(a => !a.startsWith('-')).map(a => path.relative(cwd, path.resolve(cwd, a)))
  if (paths.length === 0) return true
  return paths.some(p => p === '' || dir === p || dir.startsWith(p + path.sep) || p.startsWith(dir + path.sep))
}

export const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms))
