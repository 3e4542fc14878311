// Debian's HAProxy in front of Threadline nodes, configured as docs/deploy.md configures it
// (MQTT in `mode tcp` with the PROXY protocol, REST, WebSocket and long-poll in `mode http`
// with X-Forwarded-For, health checks on /readyz), on loopback ports, run in the foreground
// as the current user from a temp dir, and stopped at teardown. test/run.ts installs the
// package (services/haproxy.ts).
import { type ChildProcess, spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { haproxyBin } from '../services/haproxy.js'
import { freePort } from '../services/util.js'
import { tempDir } from './node.js'
import { withTimeout, waitFor } from './wait.js'

interface Teardownable { teardown(fn: () => unknown): void }

/**
 * HAProxy's address: its frontends listen on it, and it reaches the nodes from it, so this
 * is what the nodes trust (THREADLINE_TRUST_PROXY).
 */
export const PROXY_ADDRESS = '127.0.0.1'
/**
 * The address the tests' clients connect from. Linux routes all of 127.0.0.0/8 to
 * loopback, so a client bound here reaches HAProxy on PROXY_ADDRESS, and a node that names
 * this address has seen through HAProxy rather than named HAProxy.
 */
export const CLIENT_ADDRESS = '127.0.0.2'

/** A node behind the balancer: the name HAProxy knows it by, and its two ports. */
export interface Backend { readonly name: string, readonly mqttPort: number, readonly httpPort: number }

/** One server's line of `show stat`, the fields the tests read. */
export interface ServerStat {
  /** `mqtt_nodes` or `http_nodes` */
  readonly backend: string
  readonly server: string
  /** `UP`, `DOWN`, or a transition such as `UP 1/2` */
  readonly status: string
  /** connections (mqtt) or streams (http) open to it now */
  readonly current: number
}

export interface Haproxy {
  readonly mqttPort: number
  readonly httpPort: number
  /** what haproxy wrote to stdout and stderr */
  readonly output: string[]
  /** A runtime API command over the stats socket (`show stat`, `disable server …`). */
  command(cmd: string): Promise<string>
  stat(): Promise<ServerStat[]>
}

export interface HealthChecks {
  /** between two checks of a server */
  inter: string
  /** failed checks in a row that mark it DOWN */
  fall: number
  /** good checks in a row that mark it UP again */
  rise: number
}

/**
 * docs/deploy.md's haproxy.cfg with loopback addresses, faster health checks, a stats
 * socket in `dir`, and no TLS, `user`, `chroot` or `daemon` (the test runs it in the
 * foreground as itself). The MQTT servers get `send-proxy-v2`; their health checks go to
 * another port (`check port`), where HAProxy sends no PROXY header, so a node's HTTP port
 * never reads one: every node seen UP proves it.
 */
export function haproxyConfig (dir: string, mqttPort: number, httpPort: number, nodes: readonly Backend[], checks: HealthChecks): string {
  const checking = `check inter ${checks.inter} fall ${checks.fall} rise ${checks.rise}`
  return `global
    stats socket ${path.join(dir, 'admin.sock')} mode 600 level admin

defaults
    retries 3
    option redispatch 1
    timeout connect 5s
    timeout queue 10s
    timeout client-fin 30s
    timeout server-fin 30s

frontend mqtt
    mode tcp
    bind ${PROXY_ADDRESS}:${mqttPort}
    timeout client 30m
    default_backend mqtt_nodes

backend mqtt_nodes
    mode tcp
    balance leastconn
    timeout server 30m
    option httpchk GET /readyz
    http-check expect status 200
    default-server ${checking} send-proxy-v2
${nodes.map(n => `    server ${n.name} 127.0.0.1:${n.mqttPort} check port ${n.httpPort}`).join('\n')}

frontend http
    mode http
    bind ${PROXY_ADDRESS}:${httpPort}
    timeout client 100s
    timeout http-request 10s
    timeout http-keep-alive 10s
    http-request del-header X-Forwarded-For
    option forwardfor
    default_backend http_nodes

backend http_nodes
    mode http
    balance leastconn
    timeout server 100s
    timeout tunnel 30m
    option httpchk GET /readyz
    http-check expect status 200
    default-server ${checking}
${nodes.map(n => `    server ${n.name} 127.0.0.1:${n.httpPort}`).join('\n')}
`
}

/** One command on HAProxy's runtime API: it answers and closes the connection. */
function runtimeCommand (socketPath: string, cmd: string): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    let answer = ''
    const socket = net.connect(socketPath, () => socket.end(cmd + '\n'))
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { answer += chunk })
    socket.on('error', reject)
    socket.on('close', () => resolve(answer))
  }), `HAProxy's answer to "${cmd}"`, 5000)
}

function parseStat (csv: string): ServerStat[] {
  const [header, ...rows] = csv.trim().split('\n')
  const fields = (header ?? '').replace(/^# /, '').split(',')
  const at = (name: string): number => fields.indexOf(name)
  return rows.map(row => row.split(','))
    .filter(cells => !['FRONTEND', 'BACKEND'].includes(cells[at('svname')] ?? ''))
    .map(cells => ({
      backend: cells[at('pxname')] ?? '',
      server: cells[at('svname')] ?? '',
      status: cells[at('status')] ?? '',
      current: Number(cells[at('scur')] ?? 0)
    }))
}

const START_ATTEMPTS = 3

/**
 * Starts HAProxy in front of `nodes` and resolves once it listens and has seen every node
 * pass a health check. Its frontends take free loopback ports; another process may take
 * one before HAProxy binds it, so a failed start is retried on new ports.
 */
export async function startHaproxy (t: Teardownable, nodes: readonly Backend[], checks: HealthChecks = { inter: '200ms', fall: 2, rise: 1 }): Promise<Haproxy> {
  const bin = process.env.THREADLINE_TEST_HAPROXY ?? haproxyBin()
  if (bin === undefined) throw new Error('haproxy is not installed: run the test with npm test, which installs it')
  const dir = await tempDir(t)
  const socketPath = path.join(dir, 'admin.sock')
  for (let attempt = 1; ; attempt++) {
    const [mqttPort, httpPort] = [await freePort(), await freePort()]
    const cfg = path.join(dir, 'haproxy.cfg')
    await writeFile(cfg, haproxyConfig(dir, mqttPort, httpPort, nodes, checks))
    const output: string[] = []
    // -db: in the foreground, so the child is HAProxy itself and the teardown stops it
    const child: ChildProcess = spawn(bin, ['-db', '-f', cfg], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
    let running = true
    void exited.then(() => { running = false })
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8')
      stream?.on('data', (chunk: string) => output.push(...chunk.split('\n').filter(line => line !== '')))
    }
    t.teardown(async () => {
      if (!running) return
      child.kill('SIGTERM') // a hard stop: it closes every connection at once
      await withTimeout(exited, 'HAProxy to exit', 5000).catch(() => child.kill('SIGKILL'))
    })
    const haproxy: Haproxy = {
      mqttPort,
      httpPort,
      output,
      command: cmd => runtimeCommand(socketPath, cmd),
      stat: async () => parseStat(await runtimeCommand(socketPath, 'show stat'))
    }
    try {
      await waitFor(async () => {
        if (!running) throw new Error(`haproxy exited:\n${output.join('\n')}`)
        const stats = await haproxy.stat().catch(() => [])
        return stats.length === nodes.length * 2 && stats.every(s => s.status === 'UP')
      }, 'HAProxy to listen and see every node UP', 15_000, 50)
      return haproxy
    } catch (err) {
      if (attempt === START_ATTEMPTS) throw err
      if (running) child.kill('SIGKILL')
      await exited
    }
  }
}

export interface Answer<T> { status: number, body: T }

export interface RequestOptions {
  signal?: AbortSignal
  /** more request headers (a forged X-Forwarded-For) */
  headers?: Record<string, string>
}

/** A JSON request; a body that is not JSON (HAProxy's own 502 page) rejects, as a cut connection does. */
export type HttpClient = <T = unknown>(bearer: string | null, method: string, path: string, body?: unknown, opts?: RequestOptions) => Promise<Answer<T>>

/**
 * HTTP to HAProxy's frontend on `port` from `localAddress`, over kept-alive connections
 * (fetch can't choose its source address without an undici Agent of its own).
 */
export function httpClient (t: Teardownable, port: number, localAddress: string): HttpClient {
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  return async <T>(bearer: string | null, method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<Answer<T>> => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({
        host: PROXY_ADDRESS,
        port,
        localAddress,
        agent,
        method,
        path,
        signal: opts.signal,
        headers: {
          ...(bearer !== null ? { authorization: `Bearer ${bearer}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...opts.headers
        }
      }, resolve)
      req.on('error', reject)
      req.end(body === undefined ? undefined : JSON.stringify(body))
    })
    let text = ''
    res.setEncoding('utf8')
    for await (const chunk of res) text += chunk as string
    return { status: res.statusCode ?? 0, body: (text === '' ? null : JSON.parse(text)) as T }
  }
}
