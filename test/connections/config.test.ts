import t, { type Test } from 'tap'
import { ConfigError, DEFAULT_MAX_CONNECTIONS, loadConfig } from '../../broker/config.js'
import { PLUGINS } from '../../broker/plugins.js'
import { RESERVED_FILES, SOCKET_HEADROOM, openFilesLimit } from '../../broker/open-files.js'

const load = (env: Record<string, string>, openFiles: number | null = 20_000): ReturnType<typeof loadConfig> => loadConfig(env, PLUGINS, openFiles)

function refusal (t: Test, env: Record<string, string>, openFiles: number | null = 20_000): ConfigError {
  let err: unknown = null
  try {
    load(env, openFiles)
  } catch (e) {
    err = e
  }
  t.ok(err instanceof ConfigError, `${JSON.stringify(env)} is refused`)
  return err as ConfigError
}

t.test('defaults: 10,000 connections, 10 s to CONNECT, keepalives up to an hour, no proxy trusted', async (t) => {
  t.match(load({}), { maxConnections: DEFAULT_MAX_CONNECTIONS, connectTimeoutMs: 10_000, keepaliveMaxS: 3600, trustProxy: [] })
  t.equal(DEFAULT_MAX_CONNECTIONS, 10_000)
  t.equal(load({}, null).maxConnections, 10_000, 'an unknown open-files limit checks nothing')
})

t.test('the open-files limit is read from /proc/self/limits (this machine: 20,000)', async (t) => {
  const limit = openFilesLimit()
  t.type(limit, 'number')
  t.ok((limit as number) >= 1024, `soft limit ${limit}`)
})

t.test('THREADLINE_MAX_CONNECTIONS must fit the open-files limit with room for sockets before CONNECT, HTTP, the store and Redis', async (t) => {
  const fit = 20_000 - SOCKET_HEADROOM - RESERVED_FILES
  t.equal(load({ THREADLINE_MAX_CONNECTIONS: String(fit) }).maxConnections, fit, `${fit} fits 20,000 files`)
  t.equal(load({ THREADLINE_MAX_CONNECTIONS: '19000' }).maxConnections, 19_000, 'the bench\'s 19,000 fits')
  const err = refusal(t, { THREADLINE_MAX_CONNECTIONS: String(fit + 1) })
  t.equal(err.variable, 'THREADLINE_MAX_CONNECTIONS')
  t.match(err.message, new RegExp(`^THREADLINE_MAX_CONNECTIONS: ${fit + 1} connections need up to 20001 open files .* may open 20000 \\(ulimit -n\\): set at most ${fit}, or raise the limit$`))
  // unset, the default shrinks to what fits rather than stopping a small machine
  t.equal(load({}, 4096).maxConnections, 4096 - SOCKET_HEADROOM - RESERVED_FILES)
  t.match(refusal(t, {}, 500).message, /^THREADLINE_MAX_CONNECTIONS: this process may open only 500 files \(ulimit -n\): raise it to at least 769$/)
})

t.test('every wrong value stops with a message that names the variable', async (t) => {
  const bad: Array<[string, string, RegExp]> = [
    ['THREADLINE_MAX_CONNECTIONS', '0', /between 1 and 1000000/],
    ['THREADLINE_MAX_CONNECTIONS', 'many', /whole number/],
    ['THREADLINE_MAX_CONNECTIONS', '5e3', /whole number/],
    ['THREADLINE_CONNECT_TIMEOUT_MS', '50', /between 100 and 600000/],
    ['THREADLINE_CONNECT_TIMEOUT_MS', '10s', /whole number/],
    ['THREADLINE_KEEPALIVE_MAX_S', '5', /0 \(no bound\) or between 10 and 65535, got 5/],
    ['THREADLINE_KEEPALIVE_MAX_S', '65536', /between 0 and 65535/],
    ['THREADLINE_KEEPALIVE_MAX_S', '-1', /whole number/],
    ['THREADLINE_TRUST_PROXY', 'loopback', /"loopback" is not an address or a CIDR block/],
    ['THREADLINE_TRUST_PROXY', '10.0.0.0/33', /"10.0.0.0\/33" is not an address or a CIDR block/],
    ['THREADLINE_TRUST_PROXY', 'fd00::/129', /not an address or a CIDR block/],
    ['THREADLINE_TRUST_PROXY', '10.0.0.1/8/8', /not an address or a CIDR block/],
    ['THREADLINE_TRUST_PROXY', '10.0.0.1/', /not an address or a CIDR block/],
    ['THREADLINE_TRUST_PROXY', '10.0.0.256', /not an address or a CIDR block/],
    ['THREADLINE_TRUST_PROXY', ', ,', /lists no address/]
  ]
  for (const [name, value, why] of bad) {
    const err = refusal(t, { [name]: value })
    t.equal(err.variable, name)
    t.match(err.message, new RegExp(`^${name}: .*${why.source}`), `${name}=${value}: ${err.message}`)
  }
})

t.test('good values are read as given', async (t) => {
  t.match(load({
    THREADLINE_MAX_CONNECTIONS: '1',
    THREADLINE_CONNECT_TIMEOUT_MS: '100',
    THREADLINE_KEEPALIVE_MAX_S: '0',
    THREADLINE_TRUST_PROXY: ' 10.0.0.5 ,10.1.0.0/16, ::1, fd00::/8 '
  }), { maxConnections: 1, connectTimeoutMs: 100, keepaliveMaxS: 0, trustProxy: ['10.0.0.5', '10.1.0.0/16', '::1', 'fd00::/8'] })
  t.equal(load({ THREADLINE_KEEPALIVE_MAX_S: '10' }).keepaliveMaxS, 10)
  t.equal(load({ THREADLINE_KEEPALIVE_MAX_S: '65535' }).keepaliveMaxS, 65535)
  t.ok(Object.isFrozen(load({ THREADLINE_TRUST_PROXY: '10.0.0.5' }).trustProxy))
})
