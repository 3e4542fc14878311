import { createSigner } from 'fast-jwt'
import t from 'tap'
import { forEachStore } from '../helpers/stores.js'
import { buildTestApi, TEST_SECRET } from '../helpers/sync-api.js'

const nowS = (): number => Math.floor(Date.now() / 1000)

t.test('every /v1 route wants a valid bearer token: missing, forged, expired or malformed tokens answer 401', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const sign = (key: string, claims: Record<string, unknown>): string => createSigner({ key, algorithm: 'HS256' })(claims)
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['no Authorization header', {}, /Bearer/],
    ['another scheme', { authorization: 'Basic YW5uOnB3' }, /Bearer/],
    ['a token signed with another secret', { authorization: `Bearer ${sign('another-secret-0123456789abcdef', { sub: 'ann', exp: nowS() + 60 })}` }, /not valid/],
    ['an expired token', { authorization: `Bearer ${sign(TEST_SECRET, { sub: 'ann', exp: nowS() - 60 })}` }, /expired/],
    ['a token without exp', { authorization: `Bearer ${sign(TEST_SECRET, { sub: 'ann' })}` }, /exp/],
    ['a token whose sub is no user id', { authorization: `Bearer ${sign(TEST_SECRET, { sub: 'a b', exp: nowS() + 60 })}` }, /sub/],
    ['garbage', { authorization: 'Bearer not.a.jwt' }, /not valid/]
  ]
  for (const [what, headers, message] of cases) {
    for (const [method, url] of [['GET', '/v1/me'], ['GET', '/v1/conversations'], ['POST', '/v1/conversations']] as const) {
      const res = await api.app.inject({ method, url, headers, ...(method === 'POST' ? { payload: { type: 'direct', members: ['ben'] } } : {}) })
      t.equal(res.statusCode, 401, `${what}: ${method} ${url}`)
      t.match(res.json(), { code: 'unauthorized', message }, what)
      t.match(res.headers['www-authenticate'], /^Bearer realm="threadline"/, what)
    }
  }
  t.equal((await store.query('SELECT id FROM users')).length, 0, 'no user row for a refused token')
  t.equal((await store.query('SELECT id FROM conversations')).length, 0)
}))

t.test('GET /v1/me answers the profile; a token\'s name becomes the display name', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const plain = await api.call('zoe', { method: 'GET', url: '/v1/me' })
  t.equal(plain.statusCode, 200)
  t.same(plain.json(), { user_id: 'zoe', display_name: 'zoe', settings: { presence_visibility: 'everyone' } })
  const named = await api.app.inject({ method: 'GET', url: '/v1/me', headers: api.auth('zoe', 'Zoë') })
  t.same(named.json(), { user_id: 'zoe', display_name: 'Zoë', settings: { presence_visibility: 'everyone' } })
}))

t.test('unknown routes, bad JSON and wrong bodies answer catalog errors', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  for (const url of ['/nope', '/v1/nope', '/v1/conversations/00000000-0000-4000-8000-000000000000/nope']) {
    const res = await api.call('ann', { method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.match(res.json(), { code: 'not_found', message: /no route GET/ }, url)
  }
  const badJson = await api.call('ann', { method: 'POST', url: '/v1/conversations', payload: '{"type": "direct",', headers: { 'content-type': 'application/json' } })
  t.equal(badJson.statusCode, 400)
  t.same(badJson.json(), { code: 'bad_request', message: 'request body is not valid JSON' })
  const empty = await api.call('ann', { method: 'POST', url: '/v1/conversations', payload: '', headers: { 'content-type': 'application/json' } })
  t.equal(empty.statusCode, 400)
  t.match(empty.json(), { code: 'bad_request', message: /^body must be object/ }, 'an empty JSON body is no body')
  const notObject = await api.call('ann', { method: 'POST', url: '/v1/conversations', payload: '"direct"', headers: { 'content-type': 'application/json' } })
  t.match(notObject.json(), { code: 'bad_request', message: /^body must be object/ })
  const proto = await api.call('ann', { method: 'POST', url: '/v1/conversations', payload: '{"type":"direct","members":["ben"],"__proto__":{"x":1}}', headers: { 'content-type': 'application/json' } })
  t.equal(proto.statusCode, 400)
  t.equal(proto.json().code, 'bad_request')
}))

t.test('a body that is not JSON answers 415 with the catalog shape, on every route that takes one', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = '00000000-0000-4000-8000-000000000000'
  const routes: Array<['POST' | 'PATCH', string]> = [
    ['POST', '/v1/conversations'], ['POST', `/v1/conversations/${conv}/members`],
    ['PATCH', `/v1/conversations/${conv}/members/me`], ['POST', `/v1/conversations/${conv}/messages`]
  ]
  const bodies: Array<[string, string]> = [
    ['text/plain', '{"type":"direct","members":["ben"]}'],
    ['application/x-www-form-urlencoded', 'type=direct&members=ben'],
    ['multipart/form-data; boundary=x', '--x\r\n\r\nhello\r\n--x--']
  ]
  for (const [method, url] of routes) {
    for (const [type, payload] of bodies) {
      const res = await api.call('ann', { method, url, payload, headers: { 'content-type': type } })
      t.equal(res.statusCode, 415, `${method} ${url} as ${type}`)
      t.match(res.json(), { code: 'bad_request', message: /Content-Type is not supported \(use application\/json\)/ }, `${method} ${url} as ${type}`)
    }
  }
}))

t.test('an unexpected failure answers a bare 500 and never leaks its details', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  api.app.get('/boom', async () => { throw new Error('secret internals at /srv/x.ts:12') })
  const res = await api.app.inject({ method: 'GET', url: '/boom' })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { code: 'internal', message: 'internal server error' })
  t.notMatch(res.body, /secret|\.ts/)
}))

t.test('/healthz is always ok; /readyz names what is down', t => forEachStore(t, async (t, store) => {
  let redisUp = true
  const api = await buildTestApi(t, store, {
    checks: [{ name: 'redis', check: async () => { if (!redisUp) throw new Error('ECONNREFUSED') } }]
  })
  const health = await api.app.inject({ method: 'GET', url: '/healthz' })
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })
  const ready = await api.app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok' })

  redisUp = false
  const down = await api.app.inject({ method: 'GET', url: '/readyz' })
  t.equal(down.statusCode, 503)
  t.same(down.json(), { code: 'unavailable', message: 'not ready: redis unreachable' })
}))

t.test('with the store gone, /readyz and store-backed routes answer 503 unavailable while /healthz stays ok', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = (await api.call('ann', { method: 'POST', url: '/v1/conversations', payload: { type: 'direct', members: ['ben'] } })).json()
  await store.close()

  const ready = await api.app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { code: 'unavailable', message: 'not ready: store unreachable' })
  t.equal((await api.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)

  const requests = [
    { method: 'GET', url: '/v1/conversations' },
    { method: 'GET', url: `/v1/conversations/${conv.id}/events` },
    { method: 'POST', url: `/v1/conversations/${conv.id}/messages`, payload: { client_msg_id: 'down1', type: 'text', text: 'hi' } },
    { method: 'GET', url: '/v1/me' }
  ] as const
  for (const req of requests) {
    const res = await api.call('ann', req)
    t.equal(res.statusCode, 503, `${req.method} ${req.url}`)
    t.equal(res.json().code, 'unavailable', `${req.method} ${req.url}`)
  }
  const newcomer = await api.call('someone-new', { method: 'GET', url: '/v1/me' })
  t.equal(newcomer.statusCode, 503, 'the first-seen upsert fails as unavailable too')
}, { fresh: true }))

t.test('/docs serves the OpenAPI document of every route, with bearer auth described', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const ui = await api.app.inject({ method: 'GET', url: '/docs' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
  const res = await api.app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.match(doc.openapi, /^3\./)
  t.same(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: doc.components.securitySchemes.bearerAuth.description })
  t.same(doc.security, [{ bearerAuth: [] }])
  const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, ops]) => Object.keys(ops).map(m => `${m.toUpperCase()} ${path}`)).sort()
  t.same(routes, [
    'DELETE /v1/conversations/{id}/members/{user_id}',
    'GET /healthz',
    'GET /readyz',
    'GET /v1/conversations',
    'GET /v1/conversations/{id}',
    'GET /v1/conversations/{id}/events',
    'GET /v1/me',
    'GET /v1/sync',
    'PATCH /v1/conversations/{id}/members/me',
    'POST /v1/conversations',
    'POST /v1/conversations/{id}/members',
    'POST /v1/conversations/{id}/messages'
  ])
  t.same(doc.paths['/healthz'].get.security, [], 'health needs no token')
  const sendBody = doc.paths['/v1/conversations/{id}/messages'].post.requestBody.content['application/json'].schema
  t.equal(sendBody.anyOf.length, 4, 'the send body documents all four kinds')
  t.ok(doc.paths['/v1/conversations'].get.responses['200'].content['application/json'].schema.properties.next_cursor)
}))
