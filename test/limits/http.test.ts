// REST limits: per client address on every /v1 request (before authentication), per
// user and route after it; 429 rate_limited with Retry-After. Bodies over
// THREADLINE_MAX_PAYLOAD_BYTES answer 413 too_large on every route that takes one.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startNode, token } from '../helpers/node.js'
import { userId } from '../helpers/fixtures.js'

t.test('per address: unauthenticated requests count; over the burst 429 before any token check; other paths are not limited', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: { THREADLINE_HTTP_IP_RATE: '1', THREADLINE_HTTP_IP_BURST: '3' } })
  const limited: string[] = []
  node.telemetry.on('limited', e => limited.push(e.limit))
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await node.app.inject({ method: 'GET', url: '/v1/me' })).statusCode)
  t.same(statuses, [401, 401, 401, 429])
  const over = await node.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token(node, userId('alice'))}` } })
  t.equal(over.statusCode, 429, 'a valid token does not help the address')
  t.match(over.json(), { code: 'rate_limited' })
  t.equal(over.headers['retry-after'], '1')
  const elsewhere = await node.app.inject({ method: 'GET', url: '/v1/me', remoteAddress: '192.0.2.7', headers: { authorization: `Bearer ${token(node, userId('bob'))}` } })
  t.equal(elsewhere.statusCode, 200, 'another address has its own budget')
  t.equal((await node.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, '/healthz is not limited')
  t.same(limited, ['http_ip', 'http_ip'])
})

t.test('per user and route: each route has its own bucket; another user is not affected', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: { THREADLINE_HTTP_USER_RATE: '1', THREADLINE_HTTP_USER_BURST: '2' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const as = (user: string): Record<string, string> => ({ authorization: `Bearer ${token(node, user)}` })
  const me = async (user: string): Promise<number> => (await node.app.inject({ method: 'GET', url: '/v1/me', headers: as(user) })).statusCode
  t.same([await me(alice), await me(alice), await me(alice)], [200, 200, 429])
  const conversations = await node.app.inject({ method: 'GET', url: '/v1/conversations', headers: as(alice) })
  t.equal(conversations.statusCode, 200, 'GET /v1/conversations has a bucket of its own')
  t.equal(await me(bob), 200, 'bob has his own')
  const other = await node.app.inject({ method: 'GET', url: `/v1/conversations/${randomUUID()}`, headers: as(alice) })
  const again = await node.app.inject({ method: 'GET', url: `/v1/conversations/${randomUUID()}`, headers: as(alice) })
  const third = await node.app.inject({ method: 'GET', url: `/v1/conversations/${randomUUID()}`, headers: as(alice) })
  t.same([other.statusCode, again.statusCode, third.statusCode], [403, 403, 429], 'a route is one bucket whatever its parameters')
})

t.test('a body over THREADLINE_MAX_PAYLOAD_BYTES answers 413 too_large on every route that takes one', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: { THREADLINE_MAX_PAYLOAD_BYTES: '2048' } })
  const auth = { authorization: `Bearer ${token(node, userId('alice'))}`, 'content-type': 'application/json' }
  const big = JSON.stringify({ pad: 'x'.repeat(3000) })
  const conv = randomUUID()
  const routes: Array<[string, string]> = [
    ['POST', '/v1/conversations'],
    ['POST', `/v1/conversations/${conv}/messages`],
    ['POST', `/v1/conversations/${conv}/members`],
    ['PATCH', `/v1/conversations/${conv}/members/me`],
    ['POST', `/v1/conversations/${conv}/receipts`],
    ['POST', `/v1/conversations/${conv}/typing`],
    ['PATCH', '/v1/me/settings'],
    ['PUT', '/v1/devices/phone'],
    ['POST', '/v1/events/queue']
  ]
  for (const [method, url] of routes) {
    const res = await node.app.inject({ method: method as 'POST', url, headers: auth, payload: big })
    t.equal(res.statusCode, 413, `${method} ${url}: 413`)
    t.match(res.json(), { code: 'too_large', message: /2048-byte limit/ })
  }
})
