// The only reader of process.env. Every variable of DESIGN.md §7 is parsed and
// validated here once at startup; a wrong value stops startup with a message that
// names the variable. The result is frozen and passed down as options.
import net from 'node:net'
import path from 'node:path'
import { connectionsThatFit, filesNeeded, openFilesLimit } from './open-files.js'
import type { ThreadlinePlugin } from './plugin.js'
import { PLUGINS } from './plugins.js'

export type OpenTopicsPolicy = 'none' | 'authenticated' | 'anonymous'

/** Which web origins may call the REST API from a browser: any, or exactly these (none when empty). */
export type CorsOrigins = '*' | readonly string[]

export interface Config {
  readonly mqttPort: number
  readonly httpPort: number
  readonly host: string
  readonly dataDir: string
  /** null → generated once into the data dir (see plugins/auth/secret.ts) */
  readonly jwtSecret: string | null
  /** null → tokens' `iss` is not checked */
  readonly jwtIssuer: string | null
  /** null → tokens' `aud` is not checked */
  readonly jwtAudience: string | null
  readonly openTopics: OpenTopicsPolicy
  /** origins whose pages may read REST answers (CORS); the MQTT WebSocket is not governed by it */
  readonly corsOrigins: CorsOrigins
  readonly databaseUrl: string | null
  readonly redisUrl: string | null
  readonly maxPayloadBytes: number
  /** bytes that may wait for one client that doesn't read before it is disconnected */
  readonly clientBufferBytes: number
  readonly sendRatePerS: number
  readonly sendBurst: number
  /** group-commit batches in flight at once on PostgreSQL, for disjoint conversations (PGlite: always 1) */
  readonly commitConcurrency: number
  /** ms a batch waits for more sends when one just committed and few wait (0: never) */
  readonly commitGatherMs: number
  readonly maxGroupMembers: number
  /** per persistent session, events kept for an offline device (PostgreSQL stays the record) */
  readonly offlineQueueMax: number
  /** a persistent session whose client stays away longer than this is removed */
  readonly sessionExpiryS: number
  /** how long a Redis command may go unanswered before it fails (a hung Redis must not stall the node) */
  readonly redisTimeoutMs: number
  /** how long GET /v1/sync remembers that a user left a conversation; older cursors expire */
  readonly syncRetentionS: number
  /** MQTT connections (TCP and WebSocket together) past their CONNECT at once; more get CONNACK 3 */
  readonly maxConnections: number
  /** how long a new MQTT connection may take to send its CONNECT (and a PROXY header before it) */
  readonly connectTimeoutMs: number
  /** the longest keepalive a CONNECT may ask for; 0 and longer ones get CONNACK 2. 0 here: no bound */
  readonly keepaliveMaxS: number
  /** addresses and CIDRs of proxies whose word on a client's address is taken (PROXY protocol, X-Forwarded-For) */
  readonly trustProxy: readonly string[]
  readonly logLevel: string
  /** each plugin's own options, parsed by its `config` (see ThreadlinePlugin), by plugin name */
  readonly plugins: Readonly<Record<string, unknown>>
}

/** The readers every variable is parsed with; plugins get them for their own variables. */
export interface EnvReader {
  /** the trimmed value, undefined when unset or blank */
  text(name: string): string | undefined
  /** a whole number in [min, max] */
  integer(name: string, fallback: number, min: number, max: number): number
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T
  /** a URL with one of the protocols (`'redis:'`), null when unset */
  url(name: string, protocols: readonly string[]): string | null
}

export class ConfigError extends Error {
  constructor (readonly variable: string, detail: string) {
    super(`${variable}: ${detail}`)
    this.name = 'ConfigError'
  }
}

/** Room for the fixed header and topic of an MQTT packet whose payload is at the limit. */
export const PACKET_OVERHEAD_BYTES = 1024
export const MIN_JWT_SECRET_BYTES = 32
export const DEFAULT_MAX_CONNECTIONS = 10_000

type Env = Readonly<Record<string, string | undefined>>

function text (env: Env, name: string): string | undefined {
  const v = env[name]
  return v === undefined || v.trim() === '' ? undefined : v.trim()
}

function integer (env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name)
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got ${JSON.stringify(raw)}`)
  const n = Number(raw)
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`)
  return n
}

function oneOf<T extends string> (env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = text(env, name)
  if (raw === undefined) return fallback
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`)
  }
  return raw as T
}

/** An expected `iss`/`aud` value, compared as is with the token's. */
function claim (env: Env, name: string): string | null {
  const raw = text(env, name)
  if (raw === undefined) return null
  // eslint-disable-next-line no-control-regex
  if (raw.length > 256 || /[\u0000-\u001f]/.test(raw)) throw new ConfigError(name, 'must be at most 256 characters, without control characters')
  return raw
}

/**
 * `*`, `none`, or a comma-separated list of origins (`https://app.example.com`). An
 * origin as browsers send it has no path, so `https://app.example.com/` would never match
 * one: refused with the fix rather than silently matching nothing.
 */
function corsOrigins (env: Env, name: string): CorsOrigins {
  const raw = text(env, name)
  if (raw === undefined || raw === '*') return '*'
  if (raw === 'none') return Object.freeze([])
  const origins = raw.split(',').map(o => o.trim()).filter(o => o !== '')
  for (const origin of origins) {
    let parsed: URL | null = null
    try { parsed = new URL(origin) } catch {}
    if (parsed === null || !['http:', 'https:'].includes(parsed.protocol)) {
      throw new ConfigError(name, `${JSON.stringify(origin)} is not an origin: expected \`*\`, \`none\` or origins such as https://app.example.com, separated by commas`)
    }
    if (parsed.origin !== origin) {
      throw new ConfigError(name, `${JSON.stringify(origin)} is not an origin as browsers send it: use ${parsed.origin}`)
    }
  }
  if (origins.length === 0) throw new ConfigError(name, 'lists no origin')
  return Object.freeze(origins)
}

/**
 * Addresses and CIDR blocks (`10.0.0.0/8`, `::1`) separated by commas; unset → nobody.
 * Names such as `loopback` are refused rather than guessed at: who may speak for a
 * client's address must be exactly what the operator wrote.
 */
function trustedProxies (env: Env, name: string): readonly string[] {
  const raw = text(env, name)
  if (raw === undefined) return Object.freeze([])
  const entries = raw.split(',').map(e => e.trim()).filter(e => e !== '')
  for (const entry of entries) {
    const [address = '', bits, extra] = entry.split('/')
    const family = net.isIP(address)
    const width = family === 4 ? 32 : 128
    const prefixOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= width)
    if (family === 0 || !prefixOk || extra !== undefined) {
      throw new ConfigError(name, `${JSON.stringify(entry)} is not an address or a CIDR block: expected e.g. 10.0.0.5, 10.0.0.0/8 or fd00::/8, separated by commas`)
    }
  }
  if (entries.length === 0) throw new ConfigError(name, 'lists no address')
  return Object.freeze(entries)
}

/**
 * THREADLINE_MAX_CONNECTIONS within the open-files limit: a value set that can't fit stops
 * startup with the fix; unset, it is 10,000 or what fits when the limit is lower.
 */
function maxConnections (env: Env, name: string, openFiles: number | null): number {
  const fit = openFiles === null ? Infinity : connectionsThatFit(openFiles)
  if (text(env, name) === undefined) {
    const n = Math.min(DEFAULT_MAX_CONNECTIONS, fit)
    if (n < 1) throw new ConfigError(name, `this process may open only ${openFiles} files (ulimit -n): raise it to at least ${filesNeeded(1)}`)
    return n
  }
  const n = integer(env, name, DEFAULT_MAX_CONNECTIONS, 1, 1_000_000)
  if (n > fit) {
    throw new ConfigError(name, `${n} connections need up to ${filesNeeded(n)} open files (sockets before their CONNECT, HTTP, the store and Redis included), but this process may open ${openFiles} (ulimit -n): set at most ${Math.max(fit, 0)}, or raise the limit`)
  }
  return n
}

/** 0 (no bound) or 10–65535 s: below 10 s, ordinary clients' pings would not fit. */
function keepaliveMax (env: Env, name: string): number {
  const n = integer(env, name, 3600, 0, 65535)
  if (n > 0 && n < 10) throw new ConfigError(name, `must be 0 (no bound) or between 10 and 65535, got ${n}`)
  return n
}

function url (env: Env, name: string, protocols: readonly string[]): string | null {
  const raw = text(env, name)
  if (raw === undefined) return null
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(name, 'is not a valid URL')
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.map(p => p + '//').join(' or ')}`)
  }
  return raw
}

export function envReader (env: Env): EnvReader {
  return {
    text: (name) => text(env, name),
    integer: (name, fallback, min, max) => integer(env, name, fallback, min, max),
    oneOf: (name, allowed, fallback) => oneOf(env, name, allowed, fallback),
    url: (name, protocols) => url(env, name, protocols)
  }
}

/**
 * `plugins`: whose sections to parse; the node's plugin list unless a test brings its own.
 * `openFiles`: the process's open-files limit (null: unknown, nothing checked).
 */
export function loadConfig (env: Env = process.env, plugins: ReadonlyArray<ThreadlinePlugin<unknown>> = PLUGINS, openFiles: number | null = openFilesLimit()): Config {
  const jwtSecret = text(env, 'THREADLINE_JWT_SECRET') ?? null
  // HS256 with a key shorter than its 256-bit output can be brute-forced offline from any
  // one token (RFC 7518 §3.2 asks for at least 256 bits)
  if (jwtSecret !== null && Buffer.byteLength(jwtSecret, 'utf8') < MIN_JWT_SECRET_BYTES) {
    throw new ConfigError('THREADLINE_JWT_SECRET', `must be at least ${MIN_JWT_SECRET_BYTES} bytes`)
  }
  const maxPayloadBytes = integer(env, 'THREADLINE_MAX_PAYLOAD_BYTES', 65536, 1024, 256 * 1024 * 1024)
  // one packet at the size limit must always fit, or such a client could never be served
  const minClientBuffer = maxPayloadBytes + PACKET_OVERHEAD_BYTES
  const clientBufferBytes = integer(env, 'THREADLINE_CLIENT_BUFFER_BYTES', Math.max(1024 * 1024, minClientBuffer), 1, 4 * 1024 * 1024 * 1024)
  if (clientBufferBytes < minClientBuffer) {
    throw new ConfigError('THREADLINE_CLIENT_BUFFER_BYTES', `must be at least THREADLINE_MAX_PAYLOAD_BYTES + ${PACKET_OVERHEAD_BYTES} = ${minClientBuffer} (one packet at the size limit must fit), got ${clientBufferBytes}`)
  }
  const host = text(env, 'THREADLINE_HOST') ?? '0.0.0.0'
  if (!/^[A-Za-z0-9.:-]+$/.test(host)) throw new ConfigError('THREADLINE_HOST', `is not a host name or address: ${JSON.stringify(host)}`)
  return Object.freeze({
    mqttPort: integer(env, 'THREADLINE_MQTT_PORT', 1883, 0, 65535),
    httpPort: integer(env, 'THREADLINE_HTTP_PORT', 8080, 0, 65535),
    host,
    dataDir: path.resolve(text(env, 'THREADLINE_DATA_DIR') ?? './data'),
    jwtSecret,
    jwtIssuer: claim(env, 'THREADLINE_JWT_ISSUER'),
    jwtAudience: claim(env, 'THREADLINE_JWT_AUDIENCE'),
    openTopics: oneOf(env, 'THREADLINE_OPEN_TOPICS', ['none', 'authenticated', 'anonymous'] as const, 'none'),
    corsOrigins: corsOrigins(env, 'THREADLINE_CORS_ORIGINS'),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    maxPayloadBytes,
    clientBufferBytes,
    sendRatePerS: integer(env, 'THREADLINE_SEND_RATE', 20, 1, 1_000_000),
    sendBurst: integer(env, 'THREADLINE_SEND_BURST', 100, 1, 1_000_000),
    commitConcurrency: integer(env, 'THREADLINE_COMMIT_CONCURRENCY', 1, 1, 8),
    commitGatherMs: integer(env, 'THREADLINE_COMMIT_GATHER_MS', 0, 0, 50),
    maxGroupMembers: integer(env, 'THREADLINE_MAX_GROUP_MEMBERS', 256, 2, 100_000),
    offlineQueueMax: integer(env, 'THREADLINE_OFFLINE_QUEUE_MAX', 1000, 1, 1_000_000),
    // 1 s upwards so tests can watch a session expire; 10 years is "never" in practice
    sessionExpiryS: integer(env, 'THREADLINE_SESSION_EXPIRY_S', 604_800, 1, 315_360_000),
    redisTimeoutMs: integer(env, 'THREADLINE_REDIS_TIMEOUT_MS', 1000, 50, 60_000),
    // 30 days; at least an hour, so a cursor survives a phone's night
    syncRetentionS: integer(env, 'THREADLINE_SYNC_RETENTION_S', 2_592_000, 3600, 315_360_000),
    maxConnections: maxConnections(env, 'THREADLINE_MAX_CONNECTIONS', openFiles),
    // Aedes' own default is 30 s; a client on a slow mobile link sends its CONNECT within
    // one round trip of the TCP handshake, so 10 s is generous and frees idle sockets sooner
    connectTimeoutMs: integer(env, 'THREADLINE_CONNECT_TIMEOUT_MS', 10_000, 100, 600_000),
    // an hour: three times the 20 minutes a battery-minded app asks for; 0 lifts the bound
    keepaliveMaxS: keepaliveMax(env, 'THREADLINE_KEEPALIVE_MAX_S'),
    trustProxy: trustedProxies(env, 'THREADLINE_TRUST_PROXY'),
    logLevel: oneOf(env, 'THREADLINE_LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    plugins: pluginSections(env, plugins)
  })
}

function pluginSections (env: Env, plugins: ReadonlyArray<ThreadlinePlugin<unknown>>): Readonly<Record<string, unknown>> {
  const reader = envReader(env)
  const sections: Record<string, unknown> = {}
  for (const plugin of plugins) {
    if (plugin.config !== undefined) sections[plugin.name] = Object.freeze(plugin.config(reader))
  }
  return Object.freeze(sections)
}
