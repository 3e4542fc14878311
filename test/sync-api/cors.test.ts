import t from 'tap'
import type { Config } from '../../broker/config.js'
import type { Store } from '../../broker/store/index.js'
import { buildTestApi } from '../helpers/sync-api.js'
import { openTestStore } from '../helpers/stores.js'

// what a browser sends before a cross-origin POST with a bearer token and a JSON body
const preflight = (origin: string, url = '/v1/conversations') => ({
  method: 'OPTIONS' as const,
  url,
  headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' }
})

const store: Store = await openTestStore(t, process.env.DATABASE_URL ? 'pg' : 'pglite')
const api = (t: Parameters<typeof buildTestApi>[0], corsOrigins: Config['corsOrigins']) => buildTestApi(t, store, { config: { corsOrigins } })

t.test('by default any origin may call the API: the preflight is answered 204 before the token check', async (t) => {
  const { app } = await api(t, '*')
  const res = await app.inject(preflight('https://chat.example.org'))
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], '*')
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) t.match(res.headers['access-control-allow-methods'], method, `${method} allowed`)
  t.match(res.headers['access-control-allow-headers'], /Authorization/)
  t.match(res.headers['access-control-allow-headers'], /Content-Type/)
  t.equal(res.headers['access-control-max-age'], '600')
  t.notOk(res.headers['access-control-allow-credentials'], 'tokens are headers, not cookies: no credentialed CORS')
  t.equal(res.body, '')
})

t.test('answers carry Access-Control-Allow-Origin, errors included, so a page can read a 401 and get a new token', async (t) => {
  const { call } = await api(t, '*')
  const ok = await call('ann', { method: 'GET', url: '/v1/me', headers: { origin: 'https://chat.example.org' } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers['access-control-allow-origin'], '*')
  const created = await call('ann', { method: 'POST', url: '/v1/conversations', headers: { origin: 'https://chat.example.org' }, payload: { type: 'direct', members: ['ben'] } })
  t.equal(created.statusCode, 201)
  t.equal(created.headers['access-control-allow-origin'], '*')
  const refused = await call(null, { method: 'GET', url: '/v1/conversations', headers: { origin: 'https://chat.example.org' } })
  t.equal(refused.statusCode, 401)
  t.equal(refused.headers['access-control-allow-origin'], '*')
  t.match(refused.json(), { code: 'unauthorized' })
})

t.test('with a list, a listed origin is echoed and any other gets no CORS header', async (t) => {
  const { app, call } = await api(t, ['https://chat.example.org', 'http://localhost:3000'])
  for (const origin of ['https://chat.example.org', 'http://localhost:3000']) {
    const pre = await app.inject(preflight(origin))
    t.equal(pre.statusCode, 204, origin)
    t.equal(pre.headers['access-control-allow-origin'], origin)
    t.match(pre.headers.vary, /Origin/, 'caches keep answers for different origins apart')
    const res = await call('ann', { method: 'GET', url: '/v1/me', headers: { origin } })
    t.equal(res.headers['access-control-allow-origin'], origin)
  }
  const pre = await app.inject(preflight('https://evil.example'))
  t.notOk(pre.headers['access-control-allow-origin'], 'the browser refuses the request that would follow')
  const res = await call('ann', { method: 'GET', url: '/v1/me', headers: { origin: 'https://evil.example' } })
  t.equal(res.statusCode, 200, 'a request without a browser is not CORS\'s business')
  t.notOk(res.headers['access-control-allow-origin'], 'but a page of that origin can\'t read it')
})

t.test('none: no CORS at all, a preflight answers 404 as any unknown route', async (t) => {
  const { app, call } = await api(t, [])
  const pre = await app.inject(preflight('https://chat.example.org'))
  t.equal(pre.statusCode, 404)
  t.match(pre.json(), { code: 'not_found' })
  t.notOk(pre.headers['access-control-allow-origin'])
  const res = await call('ann', { method: 'GET', url: '/v1/me', headers: { origin: 'https://chat.example.org' } })
  t.equal(res.statusCode, 200)
  t.notOk(res.headers['access-control-allow-origin'])
})

t.test('every route answers CORS, health and unknown routes included: the hook runs before routing decides', async (t) => {
  const { app } = await api(t, '*')
  const health = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://chat.example.org' } })
  t.equal(health.headers['access-control-allow-origin'], '*')
  const missing = await app.inject({ method: 'GET', url: '/v1/nothing-here', headers: { origin: 'https://chat.example.org' } })
  t.equal(missing.headers['access-control-allow-origin'], '*', 'a page can read why it failed')
  const pre = await app.inject(preflight('https://chat.example.org', '/v1/events/queue'))
  t.equal(pre.statusCode, 204, 'a plugin\'s route (long-poll) is preflighted alike')
})
