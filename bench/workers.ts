// The load-generating processes: forked with an IPC channel, told what to connect and
// when to send, asked for their results. Each runs on its own core when one is free.
import { type ChildProcess, fork } from 'node:child_process'
import path from 'node:path'
import type { DriverMessage, PhaseResult, RunCommand, SetupCommand, WorkerMessage } from './protocol.js'

export class WorkerPool {
  readonly #procs: ChildProcess[]
  readonly #waiting = new Map<number, { type: WorkerMessage['type'], resolve: (m: WorkerMessage) => void, reject: (e: Error) => void }>()
  #failed: Error | null = null

  private constructor (procs: ChildProcess[]) {
    this.#procs = procs
    procs.forEach((proc, i) => {
      proc.on('message', (raw) => {
        const msg = raw as WorkerMessage
        const w = this.#waiting.get(i)
        if (msg.type === 'fatal') return this.#fail(new Error(`load worker ${i}: ${msg.message}`))
        if (w !== undefined && w.type === msg.type) {
          this.#waiting.delete(i)
          w.resolve(msg)
        }
      })
      proc.once('exit', (code, signal) => {
        if (this.#closing) return
        this.#fail(new Error(`load worker ${i} exited (${code ?? signal})`))
      })
    })
  }

  #closing = false

  /** `count` MQTT load workers, and with `longpoll` one long-poll worker after them (index `count`). */
  static start (count: number, root: string, longpoll = false): WorkerPool {
    return WorkerPool.#fork([...Array.from({ length: count }, () => 'load-worker.ts'), ...(longpoll ? ['longpoll-worker.ts'] : [])], root)
  }

  /** `count` client processes of `--scenario connections` (bench/conn-worker.ts). */
  static startConnections (count: number, root: string): WorkerPool {
    return WorkerPool.#fork(Array.from({ length: count }, () => 'conn-worker.ts'), root)
  }

  static #fork (scripts: string[], root: string): WorkerPool {
    const procs = scripts.map((script, i) => fork(path.join(root, 'bench', script), [], {
      cwd: root,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, BENCH_WORKER_ID: String(i) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    }))
    return new WorkerPool(procs)
  }

  get pids (): number[] { return this.#procs.map(p => p.pid as number) }
  get size (): number { return this.#procs.length }

  #fail (err: Error): void {
    this.#failed ??= err
    for (const [i, w] of this.#waiting) {
      this.#waiting.delete(i)
      w.reject(err)
    }
  }

  /** Sends one worker a command and waits for its answer of the given type. */
  ask<T extends WorkerMessage['type']> (i: number, msg: DriverMessage, type: T, timeoutMs: number): Promise<Extract<WorkerMessage, { type: T }>> {
    if (this.#failed !== null) return Promise.reject(this.#failed)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(i)
        reject(new Error(`load worker ${i} did not answer ${msg.cmd} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiting.set(i, {
        type,
        resolve: (m) => { clearTimeout(timer); resolve(m as Extract<WorkerMessage, { type: T }>) },
        reject: (e) => { clearTimeout(timer); reject(e) }
      })
      this.#procs[i]?.send(msg)
    })
  }

  async setup (perWorker: (i: number) => SetupCommand, timeoutMs: number): Promise<number> {
    const answers = await Promise.all(this.#procs.map((_, i) => this.ask(i, perWorker(i), 'ready', timeoutMs)))
    return Math.max(...answers.map(a => a.connectMs))
  }

  /** Runs a phase: load, then each worker's acks, then the deliveries those acks promise. */
  async run (perWorker: (i: number) => RunCommand, timeoutMs: number): Promise<PhaseResult[]> {
    const deadline = Date.now() + timeoutMs
    const phase = perWorker(0).phase
    const acks = await Promise.all(this.#procs.map((_, i) => this.ask(i, perWorker(i), 'acked', timeoutMs)))
    const acked: Record<string, number> = {}
    for (const a of acks) for (const [k, v] of Object.entries(a.acked)) acked[k] = (acked[k] ?? 0) + v
    const left = Math.max(1000, deadline - Date.now())
    const answers = await Promise.all(this.#procs.map((_, i) => this.ask(i, { cmd: 'expect', phase, acked }, 'result', left)))
    return answers.map(a => a.result)
  }

  /** Closes the workers' connections and lets them exit; kills any that hang. */
  async close (): Promise<void> {
    this.#closing = true
    await Promise.all(this.#procs.map(proc => new Promise<void>(resolve => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
      proc.once('exit', () => { clearTimeout(timer); resolve() })
      if (proc.connected) proc.send({ cmd: 'close' } satisfies DriverMessage)
      else proc.kill('SIGTERM')
    })))
  }
}
