// Runs the real server (`broker/main.ts` under tsx, or a command that starts it such as
// `npm start`) as a child process, for tests that must kill it (`kill -9`) or watch it from
// outside. Ports are 0: the child's own 'threadline is up' log line says which ones it got,
// so there is no port race.
import { type ChildProcess, spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

interface Teardownable { teardown(fn: () => unknown): void }

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface ServerProcess {
  readonly child: ChildProcess
  readonly pid: number
  readonly mqttPort: number
  readonly httpPort: number
  /** every line the child wrote (stdout and stderr), for diagnostics */
  readonly output: string[]
  /** resolves when the process has exited */
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** Sends the signal and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

export interface SpawnOptions {
  /** THREADLINE_* and DATABASE_URL/REDIS_URL; nothing of these is inherited from the test's env */
  env: Record<string, string>
  /** how long startup may take before the test fails */
  startTimeoutMs?: number
  /** what to run instead of `node --import tsx broker/main.ts` in the repo root */
  command?: { file: string, args: string[], cwd: string }
}

/** The test's environment without the variables the server reads: each test says what it wants. */
function baseEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    // npm_* too: `npm test` exports its own project's paths (npm_config_local_prefix), which
    // an `npm start` of another tree would otherwise take for its own
    if (k.startsWith('THREADLINE_') || k === 'DATABASE_URL' || k === 'REDIS_URL' || k.startsWith('TAP') || k.startsWith('npm_')) continue
    env[k] = v
  }
  return env
}

export async function spawnServer (t: Teardownable, opts: SpawnOptions): Promise<ServerProcess> {
  const command = opts.command ?? { file: process.execPath, args: ['--import', 'tsx', 'broker/main.ts'], cwd: root }
  const child = spawn(command.file, command.args, {
    cwd: command.cwd,
    // a wrapper such as npm, killed, would leave the server it started running: give the
    // wrapper a process group of its own, which the teardown kills whole
    detached: opts.command !== undefined,
    env: {
      ...baseEnv(),
      THREADLINE_HOST: '127.0.0.1',
      THREADLINE_MQTT_PORT: '0',
      THREADLINE_HTTP_PORT: '0',
      THREADLINE_LOG_LEVEL: 'info',
      ...opts.env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output: string[] = []
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  let exitedNow = false
  void exited.then(() => { exitedNow = true })
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null, signal: NodeJS.Signals | null }> => {
    if (!exitedNow) child.kill(signal)
    return await exited
  }
  t.teardown(async () => {
    if (opts.command !== undefined) {
      try {
        process.kill(-(child.pid as number), 'SIGKILL')
      } catch {} // ESRCH: the whole group has exited already
    }
    await stop('SIGKILL')
  })

  const up = new Promise<{ mqttPort: number, httpPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not up after ${opts.startTimeoutMs ?? 60_000} ms:\n${output.join('\n')}`)), opts.startTimeoutMs ?? 60_000)
    const lines = (stream: NodeJS.ReadableStream, onLine: (line: string) => void): void => {
      let rest = ''
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n')
        rest = parts.pop() ?? ''
        for (const line of parts) onLine(line)
      })
    }
    lines(child.stdout as NodeJS.ReadableStream, (line) => {
      output.push(line)
      let entry: { msg?: string, mqttPort?: number, httpPort?: number }
      try {
        entry = JSON.parse(line) as typeof entry
      } catch {
        return
      }
      if (entry.msg === 'threadline is up' && typeof entry.mqttPort === 'number' && typeof entry.httpPort === 'number') {
        clearTimeout(timer)
        resolve({ mqttPort: entry.mqttPort, httpPort: entry.httpPort })
      }
    })
    lines(child.stderr as NodeJS.ReadableStream, (line) => output.push(line))
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`server exited (code ${code}, signal ${signal}) before it was up:\n${output.join('\n')}`))
    })
  })
  const { mqttPort, httpPort } = await up
  return { child, pid: child.pid as number, mqttPort, httpPort, output, exited, stop }
}
