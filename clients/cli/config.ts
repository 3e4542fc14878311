// Where the CLI connects and as whom: flags first, then THREADLINE_URL / THREADLINE_TOKEN /
// THREADLINE_DEVICE (commander reads the environment), checked here once so that every
// command starts from values known to be usable.
import { randomBytes } from 'node:crypto'
import { isId } from '../../schemas/ids.js'
import { tokenSubject } from '../sdk/ids.js'
import { UsageError } from './errors.js'

export const DEFAULT_URL = 'http://127.0.0.1:8080'

export interface GlobalOptions {
  url: string
  token?: string
  device?: string
  mqttUrl?: string
  transport: Transport
  timeout: number
}

export const TRANSPORTS = ['auto', 'mqtt', 'websocket', 'longpoll'] as const
export type Transport = typeof TRANSPORTS[number]

export interface CliConfig {
  /** the server's HTTP base URL, without a trailing slash */
  readonly url: string
  readonly token: string
  /** the token's `sub`: who "me" is in what the commands print */
  readonly userId: string
  readonly deviceId: string
  /** the device id was made up for this run (no --device, no THREADLINE_DEVICE) */
  readonly throwawayDevice: boolean
  readonly mqttUrl?: string
  readonly transport: Transport
  /** how long to wait for the server (connecting, an acknowledgement) before giving up */
  readonly timeoutMs: number
}

function checkUrl (raw: string, flag: string, protocols: string[]): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new UsageError(`${flag} must be a URL like ${flag === '--url' ? DEFAULT_URL : 'mqtt://127.0.0.1:1883'}, got "${raw}"`)
  }
  if (!protocols.includes(url.protocol)) throw new UsageError(`${flag} must start with ${protocols.map(p => `${p}//`).join(' or ')}, got "${raw}"`)
  return raw.replace(/\/+$/, '')
}

export function resolveConfig (opts: GlobalOptions): CliConfig {
  const url = checkUrl(opts.url, '--url', ['http:', 'https:'])
  const mqttUrl = opts.mqttUrl === undefined ? undefined : checkUrl(opts.mqttUrl, '--mqtt-url', ['mqtt:', 'mqtts:', 'ws:', 'wss:'])
  const token = opts.token?.trim()
  if (token === undefined || token === '') throw new UsageError('no token: pass --token <jwt> or set THREADLINE_TOKEN (the server makes one with `npm run token -- <user>`)')
  let userId: string
  try {
    userId = tokenSubject(token)
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; the server makes one with \`npm run token -- <user>\``)
  }
  // Each run gets a device of its own unless told otherwise: two runs sharing one client id
  // would take over each other's MQTT session (a `send` would cut off a running `tail`).
  const deviceId = opts.device ?? `cli-${randomBytes(6).toString('hex')}`
  if (!isId(deviceId)) throw new UsageError(`--device must be 1–64 chars of [A-Za-z0-9_.-], got "${deviceId}"`)
  return Object.freeze({ url, token, userId, deviceId, throwawayDevice: opts.device === undefined, mqttUrl, transport: opts.transport, timeoutMs: opts.timeout * 1000 })
}
