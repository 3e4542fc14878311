// The push plugin's variables (THREADLINE_APNS_*, THREADLINE_FCM_*, THREADLINE_PUSH_*),
// parsed by loadConfig with every other variable. Credentials are read and checked here,
// synchronously at startup: a key file that is missing, unreadable or not the right kind
// of key stops the node with exit code 2 and names its variable, instead of failing the
// first notification hours later.
import { createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { ConfigError, type EnvReader } from '../../broker/config.js'

export interface Endpoint {
  readonly host: string
  readonly port: number
}

export interface ApnsOptions {
  /** the .p8 signing key, PEM */
  readonly key: string
  readonly keyId: string
  readonly teamId: string
  /** the app's bundle id: the apns-topic of every notification */
  readonly topic: string
  readonly production: boolean
  /** null → Apple's host for the environment */
  readonly endpoint: Endpoint | null
}

export interface FcmServiceAccount {
  readonly project_id: string
  readonly client_email: string
  readonly private_key: string
}

export interface FcmOptions {
  /** the service-account key file, checked at startup */
  readonly file: string
  readonly serviceAccount: FcmServiceAccount
  /** null → Google's hosts; else every HTTPS request of firebase-admin goes there */
  readonly endpoint: Endpoint | null
}

export interface PushOptions {
  /** null → APNs off */
  readonly apns: ApnsOptions | null
  /** null → FCM off */
  readonly fcm: FcmOptions | null
  /** a user's messages within this window make one notification */
  readonly windowMs: number
  /** notifications waiting, in flight or waiting for a retry, per provider; past it new ones are dropped and counted */
  readonly queueMax: number
  /** one request to a provider, after which it counts as failed (and is retried) */
  readonly timeoutMs: number
  /** attempts after the first, for 429, 5xx, timeouts and broken connections */
  readonly retries: number
  /** the first retry waits up to this long; each further one up to twice as long (full jitter) */
  readonly retryBaseMs: number
}

const APNS_VARIABLES = ['THREADLINE_APNS_KEY_FILE', 'THREADLINE_APNS_KEY_ID', 'THREADLINE_APNS_TEAM_ID', 'THREADLINE_APNS_TOPIC'] as const

export function pushConfig (env: EnvReader): PushOptions {
  return {
    apns: apnsConfig(env),
    fcm: fcmConfig(env),
    windowMs: env.integer('THREADLINE_PUSH_WINDOW_MS', 200, 0, 60_000),
    queueMax: env.integer('THREADLINE_PUSH_QUEUE_MAX', 10_000, 1, 1_000_000),
    timeoutMs: env.integer('THREADLINE_PUSH_TIMEOUT_MS', 10_000, 100, 120_000),
    retries: env.integer('THREADLINE_PUSH_RETRIES', 3, 0, 10),
    retryBaseMs: env.integer('THREADLINE_PUSH_RETRY_BASE_MS', 1000, 1, 600_000)
  }
}

function apnsConfig (env: EnvReader): ApnsOptions | null {
  const set = APNS_VARIABLES.filter(name => env.text(name) !== undefined)
  if (set.length === 0) {
    for (const name of ['THREADLINE_APNS_ENV', 'THREADLINE_APNS_HOST']) {
      if (env.text(name) !== undefined) throw new ConfigError(name, `is set but APNs is off: set ${APNS_VARIABLES.join(', ')} too`)
    }
    return null
  }
  const missing = APNS_VARIABLES.find(name => env.text(name) === undefined)
  if (missing !== undefined) throw new ConfigError(missing, `is required with ${set.join(', ')} (APNs needs all four)`)
  const keyId = env.text('THREADLINE_APNS_KEY_ID') as string
  const teamId = env.text('THREADLINE_APNS_TEAM_ID') as string
  const topic = env.text('THREADLINE_APNS_TOPIC') as string
  // Apple issues both as 10 characters (the key id is in the .p8 file's name: AuthKey_<id>.p8)
  if (!/^[A-Z0-9]{10}$/.test(keyId)) throw new ConfigError('THREADLINE_APNS_KEY_ID', 'must be the 10-character key id Apple shows for the key')
  if (!/^[A-Z0-9]{10}$/.test(teamId)) throw new ConfigError('THREADLINE_APNS_TEAM_ID', 'must be the 10-character team id of the Apple developer account')
  if (!/^[A-Za-z0-9.-]{1,255}$/.test(topic)) throw new ConfigError('THREADLINE_APNS_TOPIC', 'must be the app\'s bundle id (letters, digits, dots and hyphens)')
  const keyFile = env.text('THREADLINE_APNS_KEY_FILE') as string
  const key = readKeyFile('THREADLINE_APNS_KEY_FILE', keyFile)
  const parsed = privateKey('THREADLINE_APNS_KEY_FILE', key, `${keyFile} holds no private key in PEM form (expected the .p8 file Apple lets you download once)`)
  // APNs token auth signs with ES256: only a P-256 key can make that signature
  if (parsed.asymmetricKeyType !== 'ec' || parsed.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new ConfigError('THREADLINE_APNS_KEY_FILE', `${keyFile} is not an APNs auth key (an EC P-256 key in a .p8 file)`)
  }
  return {
    key,
    keyId,
    teamId,
    topic,
    production: env.oneOf('THREADLINE_APNS_ENV', ['production', 'sandbox'] as const, 'sandbox') === 'production',
    endpoint: endpoint(env, 'THREADLINE_APNS_HOST')
  }
}

function fcmConfig (env: EnvReader): FcmOptions | null {
  const file = env.text('THREADLINE_FCM_CREDENTIALS')
  if (file === undefined) {
    if (env.text('THREADLINE_FCM_HOST') !== undefined) throw new ConfigError('THREADLINE_FCM_HOST', 'is set but FCM is off: set THREADLINE_FCM_CREDENTIALS too')
    return null
  }
  const name = 'THREADLINE_FCM_CREDENTIALS'
  let json: unknown
  try {
    json = JSON.parse(readKeyFile(name, file))
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(name, `${file} is not JSON (expected a service-account key file from the Firebase console)`)
  }
  const account = json as Partial<Record<string, unknown>> | null
  if (account === null || typeof account !== 'object' || account.type !== 'service_account') {
    throw new ConfigError(name, `${file} is not a service-account key file ("type": "service_account")`)
  }
  for (const field of ['project_id', 'client_email', 'private_key'] as const) {
    if (typeof account[field] !== 'string' || account[field] === '') throw new ConfigError(name, `${file} has no "${field}"`)
  }
  const parsed = privateKey(name, account.private_key as string, `the "private_key" of ${file} is not a PEM private key`)
  // Google signs its OAuth assertion with RS256
  if (parsed.asymmetricKeyType !== 'rsa') throw new ConfigError(name, `the "private_key" of ${file} is not an RSA key`)
  return {
    file,
    serviceAccount: {
      project_id: account.project_id as string,
      client_email: account.client_email as string,
      private_key: account.private_key as string
    },
    endpoint: endpoint(env, 'THREADLINE_FCM_HOST')
  }
}

function readKeyFile (variable: string, file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new ConfigError(variable, `cannot read ${file} (${code})`)
  }
}

function privateKey (variable: string, pem: string, detail: string): KeyObject {
  try {
    return createPrivateKey(pem)
  } catch {
    throw new ConfigError(variable, detail)
  }
}

/** `host:port` (`[::1]:443` for IPv6). */
function endpoint (env: EnvReader, name: string): Endpoint | null {
  const raw = env.text(name)
  if (raw === undefined) return null
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw)
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  if (host === undefined || !(port >= 1 && port <= 65535) || (m?.[1] !== undefined && net.isIPv6(host) === false)) {
    throw new ConfigError(name, `must be host:port (such as push-proxy.internal:8443), got ${JSON.stringify(raw)}`)
  }
  return { host, port }
}
