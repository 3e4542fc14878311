// The limits' variables, as test/broker/config.test.ts checks the node's: defaults, `0`
// turning a limit off, and a clear error naming the variable for a bad value.
import t from 'tap'
import { ConfigError, loadConfig } from '../../broker/config.js'
import type { LimitsOptions } from '../../plugins/limits/index.js'

const limitsOf = (env: Record<string, string>): LimitsOptions => loadConfig(env).plugins.limits as LimitsOptions

t.test('defaults: every limit on, with the documented rate and burst', async (t) => {
  const limits = limitsOf({})
  const shape = (l: { intervalMs: number, burst: number } | null): [number, number] | null => l === null ? null : [1000 / l.intervalMs, l.burst]
  t.same({
    typing: shape(limits.typing),
    receipts: shape(limits.receipts),
    presence: shape(limits.presence),
    connectIp: shape(limits.connectIp),
    connectUser: shape(limits.connectUser),
    httpIp: shape(limits.httpIp),
    httpUser: shape(limits.httpUser),
    poll: shape(limits.poll)
  }, {
    typing: [5, 20],
    receipts: [20, 100],
    presence: [1, 10],
    connectIp: [100, 10_000],
    connectUser: [1, 30],
    httpIp: [100, 1000],
    httpUser: [20, 100],
    poll: [50, 200]
  })
})

t.test('a rate of 0 turns a limit off', async (t) => {
  t.equal(limitsOf({ THREADLINE_CONNECT_IP_RATE: '0' }).connectIp, null)
})

t.test('every wrong value stops with a message that names the variable', async (t) => {
  const bad: Array<[string, string, RegExp]> = [
    ['THREADLINE_TYPING_RATE', 'fast', /whole number/],
    ['THREADLINE_TYPING_BURST', '0', /between 1 and 1000000/],
    ['THREADLINE_RECEIPT_RATE', '-1', /whole number/],
    ['THREADLINE_RECEIPT_BURST', '2.5', /whole number/],
    ['THREADLINE_PRESENCE_RATE', '1000001', /between 0 and 1000000/],
    ['THREADLINE_CONNECT_IP_RATE', '1e3', /whole number/],
    ['THREADLINE_CONNECT_IP_BURST', '0', /between 1/],
    ['THREADLINE_CONNECT_USER_RATE', 'off', /whole number/],
    ['THREADLINE_CONNECT_USER_BURST', 'many', /whole number/],
    ['THREADLINE_HTTP_IP_RATE', '1.5', /whole number/],
    ['THREADLINE_HTTP_IP_BURST', '0', /between 1/],
    ['THREADLINE_HTTP_USER_RATE', 'x', /whole number/],
    ['THREADLINE_HTTP_USER_BURST', '0', /between 1/],
    ['THREADLINE_POLL_RATE', '5/s', /whole number/],
    ['THREADLINE_POLL_BURST', '0', /between 1/]
  ]
  for (const [name, value, why] of bad) {
    let caught: unknown
    try { loadConfig({ [name]: value }) } catch (err) { caught = err }
    t.ok(caught instanceof ConfigError, `${name}=${value} is refused`)
    t.equal((caught as ConfigError).variable, name, 'naming the variable')
    t.match((caught as Error).message, why)
  }
})
