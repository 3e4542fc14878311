// The limits' variables (docs/operations.md "Limits" has the table). Each limit is a
// token bucket: `_RATE` tokens per second sustained, `_BURST` tokens at once; a rate of 0
// turns that limit off. The send limit's pair (THREADLINE_SEND_RATE/_BURST) is node-wide
// configuration (broker/config.ts), read from there.
import type { EnvReader } from '../../broker/config.js'
import { limitOf, type Limit } from './buckets.js'

export interface LimitsOptions {
  /** per user, all conversations: conv/<c>/typing and POST …/typing */
  readonly typing: Limit | null
  /** per user: conv/<c>/read and POST …/receipts */
  readonly receipts: Limit | null
  /** per user: user/<me>/presence */
  readonly presence: Limit | null
  /** CONNECT attempts per client address, before the token is looked at */
  readonly connectIp: Limit | null
  /** CONNECT attempts per user, once the token is verified */
  readonly connectUser: Limit | null
  /** REST requests (/v1) per client address, before authentication */
  readonly httpIp: Limit | null
  /** REST requests per user and route */
  readonly httpUser: Limit | null
  /** long-poll GET /v1/events per user, instead of http_user */
  readonly poll: Limit | null
}

/** [limit name, rate variable, burst variable, default rate per second, default burst] */
const LIMITS = [
  ['typing', 'THREADLINE_TYPING_RATE', 'THREADLINE_TYPING_BURST', 5, 20],
  ['receipts', 'THREADLINE_RECEIPT_RATE', 'THREADLINE_RECEIPT_BURST', 20, 100],
  ['presence', 'THREADLINE_PRESENCE_RATE', 'THREADLINE_PRESENCE_BURST', 1, 10],
  // generous: carrier-grade NAT puts thousands of users behind one address, and all of
  // them reconnect at once when a node restarts
  ['connect_ip', 'THREADLINE_CONNECT_IP_RATE', 'THREADLINE_CONNECT_IP_BURST', 100, 10_000],
  // a device reconnects once per outage; a client reconnecting in a loop gets one a second
  ['connect_user', 'THREADLINE_CONNECT_USER_RATE', 'THREADLINE_CONNECT_USER_BURST', 1, 30],
  ['http_ip', 'THREADLINE_HTTP_IP_RATE', 'THREADLINE_HTTP_IP_BURST', 100, 1000],
  ['http_user', 'THREADLINE_HTTP_USER_RATE', 'THREADLINE_HTTP_USER_BURST', 20, 100],
  // a client polls again as soon as a poll answers: in a busy conversation that is one
  // poll per event or two, on each of the user's devices
  ['poll', 'THREADLINE_POLL_RATE', 'THREADLINE_POLL_BURST', 50, 200]
] as const

export type LimitName = typeof LIMITS[number][0] | 'send'

export const MAX_RATE = 1_000_000

function parse (env: EnvReader, name: string, rateVariable: string, burstVariable: string, rate: number, burst: number): Limit | null {
  const r = env.integer(rateVariable, rate, 0, MAX_RATE)
  const b = env.integer(burstVariable, burst, 1, MAX_RATE)
  return r === 0 ? null : limitOf(name, r, b)
}

export function parseLimits (env: EnvReader): LimitsOptions {
  const [typing, receipts, presence, connectIp, connectUser, httpIp, httpUser, poll] =
    LIMITS.map(([name, rateVariable, burstVariable, rate, burst]) => parse(env, name, rateVariable, burstVariable, rate, burst))
  return { typing, receipts, presence, connectIp, connectUser, httpIp, httpUser, poll } as LimitsOptions
}
