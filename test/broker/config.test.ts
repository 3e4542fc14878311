import { spawn } from 'node:child_process'
import t from 'tap'
import { ConfigError, loadConfig } from '../../broker/config.js'

t.test('defaults are the embedded ones of DESIGN.md §7', async (t) => {
  const c = loadConfig({})
  t.match(c, { mqttPort: 1883, httpPort: 8080, host: '0.0.0.0', jwtSecret: null, openTopics: 'none', databaseUrl: null, redisUrl: null, maxPayloadBytes: 65536, sendRatePerS: 20, sendBurst: 100, commitConcurrency: 1, commitGatherMs: 0, plugins: { receipts: { windowMs: 500 } } })
  t.ok(c.dataDir.endsWith('/data'))
  t.ok(Object.isFrozen(c), 'frozen once validated')
})

t.test('every wrong value stops with a message that names the variable', async (t) => {
  const bad: Array<[string, string, RegExp]> = [
    ['THREADLINE_MQTT_PORT', 'eighty', /whole number/],
    ['THREADLINE_MQTT_PORT', '70000', /between 0 and 65535/],
    ['THREADLINE_HTTP_PORT', '-1', /whole number/],
    ['THREADLINE_HOST', 'my host', /not a host/],
    ['THREADLINE_JWT_SECRET', 'short', /at least 32 bytes/],
    ['THREADLINE_JWT_SECRET', 'x'.repeat(31), /at least 32 bytes/],
    ['THREADLINE_JWT_ISSUER', 'https://id.example\u0000', /control characters/],
    ['THREADLINE_JWT_AUDIENCE', 'a'.repeat(257), /at most 256/],
    ['THREADLINE_OPEN_TOPICS', 'everyone', /none, authenticated, anonymous/],
    ['DATABASE_URL', 'not a url', /not a valid URL/],
    ['DATABASE_URL', 'mysql://localhost/db', /postgres/],
    ['REDIS_URL', 'http://localhost', /redis/],
    ['THREADLINE_MAX_PAYLOAD_BYTES', '10', /between/],
    ['THREADLINE_SEND_RATE', '0', /between/],
    ['THREADLINE_SEND_BURST', '1.5', /whole number/],
    ['THREADLINE_COMMIT_CONCURRENCY', '0', /between 1 and 8/],
    ['THREADLINE_COMMIT_CONCURRENCY', 'many', /whole number/],
    ['THREADLINE_COMMIT_GATHER_MS', '51', /between 0 and 50/],
    ['THREADLINE_COMMIT_GATHER_MS', '0.5', /whole number/],
    ['THREADLINE_RECEIPT_WINDOW_MS', 'soon', /whole number/],
    ['THREADLINE_PUSH_WINDOW_MS', '9999999', /between/],
    ['THREADLINE_LOG_LEVEL', 'loud', /one of/],
    ['THREADLINE_REDIS_TIMEOUT_MS', '10', /between 50 and 60000/],
    ['THREADLINE_CORS_ORIGINS', 'chat.example.org', /not an origin: expected `\*`, `none` or origins/],
    ['THREADLINE_CORS_ORIGINS', 'https://chat.example.org, *', /"\*" is not an origin/],
    ['THREADLINE_CORS_ORIGINS', 'https://chat.example.org/', /use https:\/\/chat\.example\.org$/],
    ['THREADLINE_CORS_ORIGINS', 'https://Chat.example.org:443', /use https:\/\/chat\.example\.org$/],
    ['THREADLINE_CORS_ORIGINS', 'ftp://files.example.org', /not an origin/],
    ['THREADLINE_CORS_ORIGINS', ',', /lists no origin/],
    ['THREADLINE_NODE_ID', 'node a', /\[A-Za-z0-9_\.:-\]/],
    ['THREADLINE_NODE_ID', 'n'.repeat(129), /1–128 chars/],
    ['THREADLINE_METRICS_PORT', 'ninety', /whole number/],
    ['THREADLINE_METRICS_PORT', '65536', /between 0 and 65535/],
    ['THREADLINE_METRICS_HOST', 'a host', /not a host/]
  ]
  for (const [name, value, why] of bad) {
    let err: unknown = null
    try {
      loadConfig({ [name]: value })
    } catch (e) {
      err = e
    }
    t.ok(err instanceof ConfigError, `${name}=${value} is refused`)
    t.equal((err as ConfigError).variable, name)
    t.match((err as Error).message, new RegExp(`^${name}: .*${why.source}`), `${name}=${value}: ${(err as Error).message}`)
  }
})

t.test('metrics: no port of its own unless THREADLINE_METRICS_PORT is set; loopback unless told; a host without a port is refused', async (t) => {
  t.same(loadConfig({}).plugins.metrics, { nodeId: null, port: null, host: '127.0.0.1' })
  t.same(loadConfig({ THREADLINE_METRICS_PORT: '9464', THREADLINE_NODE_ID: 'eu-1:a' }).plugins.metrics, { nodeId: 'eu-1:a', port: 9464, host: '127.0.0.1' })
  t.same(loadConfig({ THREADLINE_METRICS_PORT: '9464', THREADLINE_METRICS_HOST: '10.0.0.5' }).plugins.metrics, { nodeId: null, port: 9464, host: '10.0.0.5' })
  t.throws(() => loadConfig({ THREADLINE_METRICS_HOST: '10.0.0.5' }), { variable: 'THREADLINE_METRICS_HOST', message: /THREADLINE_METRICS_PORT is not/ })
})

t.test('a JWT secret of 32 bytes is enough; issuer and audience are read when set', async (t) => {
  t.equal(loadConfig({ THREADLINE_JWT_SECRET: 'x'.repeat(32) }).jwtSecret, 'x'.repeat(32))
  // bytes, not characters: 16 two-byte characters are 32 bytes
  t.equal(loadConfig({ THREADLINE_JWT_SECRET: 'é'.repeat(16) }).jwtSecret, 'é'.repeat(16))
  t.match(loadConfig({}), { jwtIssuer: null, jwtAudience: null })
  t.match(loadConfig({ THREADLINE_JWT_ISSUER: 'https://id.example', THREADLINE_JWT_AUDIENCE: 'chat' }), { jwtIssuer: 'https://id.example', jwtAudience: 'chat' })
})

t.test('CORS origins: any by default, none, or exactly the origins listed', async (t) => {
  t.equal(loadConfig({}).corsOrigins, '*')
  t.equal(loadConfig({ THREADLINE_CORS_ORIGINS: '*' }).corsOrigins, '*')
  t.same(loadConfig({ THREADLINE_CORS_ORIGINS: 'none' }).corsOrigins, [])
  t.same(loadConfig({ THREADLINE_CORS_ORIGINS: ' https://chat.example.org , http://localhost:3000 ' }).corsOrigins, ['https://chat.example.org', 'http://localhost:3000'])
  t.same(loadConfig({ THREADLINE_CORS_ORIGINS: 'http://[::1]:8081' }).corsOrigins, ['http://[::1]:8081'])
})

t.test('npm start with a wrong value exits 2 and says which variable', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'broker/main.ts'], {
    env: { ...process.env, THREADLINE_OPEN_TOPICS: 'sometimes', DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  t.equal(code, 2)
  t.match(stderr, /configuration error: THREADLINE_OPEN_TOPICS: must be one of none, authenticated, anonymous/)
})
