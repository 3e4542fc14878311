// Starts real Threadline nodes on loopback port 0 for end-to-end tests, and connects
// real MQTT.js clients to them.
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { loadConfig, type Config } from '../../broker/config.js'
import { createLogger, type Logger } from '../../broker/logger.js'
import { startThreadline, type Threadline } from '../../broker/server.js'
import type { ThreadlinePlugin } from '../../broker/plugin.js'
import { createDatabase } from './pg-database.js'
import { leaseRedisUrl } from './redis-db.js'
import { DEFAULT_WAIT_MS, withTimeout } from './wait.js'

export const TEST_SECRET = 'test-secret-0123456789abcdef-0123456789'

/** For tests that send faster than a user may (THREADLINE_SEND_RATE/_BURST, 20/s and 100 by default): no send limit shapes them. */
export const UNLIMITED_SENDS = Object.freeze({ THREADLINE_SEND_RATE: '1000000', THREADLINE_SEND_BURST: '1000000' })

interface Teardownable { teardown(fn: () => unknown): void }

export type StoreKind = 'pg' | 'pglite'

export interface NodeOptions {
  store?: StoreKind
  /** share one database (and Redis) between nodes of a cluster */
  databaseUrl?: string
  redis?: boolean
  env?: Record<string, string>
  /** the node's plugins when a test brings its own (test/fixtures/plugins/) */
  plugins?: ReadonlyArray<ThreadlinePlugin<unknown>>
  /** the node's logger, when a test reads what it writes (THREADLINE_LOG_LEVEL is ignored then) */
  logger?: Logger
}

export async function tempDir (t: Teardownable): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'threadline-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export async function testConfig (t: Teardownable, opts: NodeOptions = {}): Promise<Config> {
  let databaseUrl = opts.databaseUrl
  if (databaseUrl === undefined && (opts.store ?? 'pg') === 'pg') {
    const db = await createDatabase()
    t.teardown(db.drop)
    databaseUrl = db.url
  }
  // a database of its own, unless the test shares one between nodes through env.REDIS_URL
  const redisUrl = opts.redis === true && opts.env?.REDIS_URL === undefined ? await leaseRedisUrl(t) : undefined
  const env: Record<string, string> = {
    THREADLINE_MQTT_PORT: '0',
    THREADLINE_HTTP_PORT: '0',
    THREADLINE_HOST: '127.0.0.1',
    THREADLINE_DATA_DIR: await tempDir(t),
    THREADLINE_JWT_SECRET: TEST_SECRET,
    THREADLINE_LOG_LEVEL: process.env.THREADLINE_LOG_LEVEL ?? 'silent',
    ...(databaseUrl !== undefined ? { DATABASE_URL: databaseUrl } : {}),
    ...(redisUrl !== undefined ? { REDIS_URL: redisUrl } : {}),
    ...opts.env
  }
  return loadConfig(env, opts.plugins)
}

export async function startNode (t: Teardownable, opts: NodeOptions = {}): Promise<Threadline> {
  const config = await testConfig(t, opts)
  const node = await startThreadline(config, opts.logger ?? createLogger(config.logLevel), { plugins: opts.plugins })
  t.teardown(() => node.close())
  return node
}

export function token (node: Threadline, sub: string, extra: { role?: 'user' | 'integrator' | 'admin', name?: string, ttlS?: number } = {}): string {
  return node.tokens.sign({ sub, ...(extra.role ? { role: extra.role } : {}), ...(extra.name ? { name: extra.name } : {}) }, extra.ttlS ?? 3600)
}

export interface ConnectOptions extends IClientOptions {
  ws?: boolean
}

/** Connects `<user>:<device>` with a fresh token; resolves once CONNACK 0 arrived. */
export async function connectUser (t: Teardownable, node: Threadline, user: string, device: string, opts: ConnectOptions = {}): Promise<MqttClient> {
  const { ws, ...rest } = opts
  const url = ws === true ? `ws://127.0.0.1:${node.httpPort}/mqtt` : `mqtt://127.0.0.1:${node.mqttPort}`
  const client = await mqtt.connectAsync(url, {
    clientId: `${user}:${device}`,
    username: user,
    password: token(node, user),
    protocolVersion: 4,
    reconnectPeriod: 0,
    ...rest
  })
  t.teardown(() => client.endAsync(true))
  return client
}

/**
 * Resolves with the first `n` JSON payloads that arrive on topics matching `match`;
 * rejects after `timeoutMs` saying how many of the `n` came.
 */
export function collect<T = Record<string, unknown>> (client: MqttClient, n: number, match: (topic: string, msg: T) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<T[]> {
  const got: T[] = []
  let onMessage = (_topic: string, _payload: Buffer): void => {}
  const all = new Promise<T[]>((resolve) => {
    onMessage = (topic, payload) => {
      // the listener goes after the promise settles: a burst in one tick must not grow `got`
      if (got.length >= n) return
      let msg: T
      try {
        msg = JSON.parse(payload.toString()) as T
      } catch {
        return
      }
      if (!match(topic, msg)) return
      got.push(msg)
      if (got.length === n) resolve(got)
    }
    client.on('message', onMessage)
  })
  return withTimeout(all, `${n} matching messages at ${client.options.clientId ?? 'a client'} (${got.length} came)`, timeoutMs,
    () => client.off('message', onMessage))
}
