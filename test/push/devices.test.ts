// PUT and DELETE /v1/devices/:device_id: validated, per user, stored in PostgreSQL; a
// token registered by a second user moves to them.
import t, { type Test } from 'tap'
import type { Threadline } from '../../broker/server.js'
import { PUSH_SERVICE } from '../../core/push/service.js'
import { startNode, token } from '../helpers/node.js'

const IOS_TOKEN = 'a1'.repeat(32)
const FCM_TOKEN = 'dGVzdA:APA91bH-fcm_registration.token-0123456789'

async function put (node: Threadline, user: string, deviceId: string, body: unknown): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await node.app.inject({
    method: 'PUT',
    url: `/v1/devices/${encodeURIComponent(deviceId)}`,
    headers: { authorization: `Bearer ${token(node, user)}` },
    payload: body as Record<string, unknown>
  })
  return { status: res.statusCode, body: res.body === '' ? {} : res.json() as Record<string, unknown> }
}

async function rows (node: Threadline): Promise<Array<{ user_id: string, device_id: string, platform: string, push_token: string }>> {
  return await node.store.query('SELECT user_id, device_id, platform, push_token FROM devices ORDER BY user_id, device_id')
}

async function node (t: Test): Promise<Threadline> {
  return await startNode(t, { store: 'pglite' })
}

t.test('a device registers, re-registers and withdraws its token', async (t) => {
  const n = await node(t)
  const first = await put(n, 'ann', 'phone', { platform: 'ios', push_token: IOS_TOKEN })
  t.equal(first.status, 200)
  t.match(first.body, { device_id: 'phone', platform: 'ios', push_token: IOS_TOKEN, updated_at: String })
  const again = await put(n, 'ann', 'phone', { platform: 'ios', push_token: 'b2'.repeat(32) })
  t.equal(again.status, 200, 'a new token for the same device replaces the old one')
  await put(n, 'ann', 'pixel', { platform: 'android', push_token: FCM_TOKEN })
  t.same(await rows(n), [
    { user_id: 'ann', device_id: 'phone', platform: 'ios', push_token: 'b2'.repeat(32) },
    { user_id: 'ann', device_id: 'pixel', platform: 'android', push_token: FCM_TOKEN }
  ])

  const other = await n.app.inject({ method: 'DELETE', url: '/v1/devices/phone', headers: { authorization: `Bearer ${token(n, 'ben')}` } })
  t.equal(other.statusCode, 404, 'another user cannot remove it')
  t.equal(other.json().code, 'not_found')
  const del = await n.app.inject({ method: 'DELETE', url: '/v1/devices/phone', headers: { authorization: `Bearer ${token(n, 'ann')}` } })
  t.equal(del.statusCode, 204)
  t.same((await rows(n)).map(r => r.device_id), ['pixel'])
  const gone = await n.app.inject({ method: 'DELETE', url: '/v1/devices/phone', headers: { authorization: `Bearer ${token(n, 'ann')}` } })
  t.equal(gone.statusCode, 404, 'twice: nothing left to delete')
})

t.test('a token registered by a second user moves to them', async (t) => {
  const n = await node(t)
  t.equal((await put(n, 'ann', 'phone', { platform: 'android', push_token: FCM_TOKEN })).status, 200)
  t.equal((await put(n, 'ben', 'handed-down', { platform: 'android', push_token: FCM_TOKEN })).status, 200)
  t.same(await rows(n), [{ user_id: 'ben', device_id: 'handed-down', platform: 'android', push_token: FCM_TOKEN }])
})

t.test('bad device bodies get 400 and store nothing', async (t) => {
  const n = await node(t)
  const bad: Array<[string, string, unknown]> = [
    ['no body', 'phone', undefined],
    ['no platform', 'phone', { push_token: FCM_TOKEN }],
    ['unknown platform', 'phone', { platform: 'blackberry', push_token: FCM_TOKEN }],
    ['no token', 'phone', { platform: 'android' }],
    ['empty token', 'phone', { platform: 'android', push_token: '' }],
    ['token with spaces', 'phone', { platform: 'android', push_token: 'two words' }],
    ['token too long', 'phone', { platform: 'web', push_token: 'x'.repeat(4097) }],
    ['token not a string', 'phone', { platform: 'web', push_token: 12345 }],
    ['an iOS token that is not hex', 'phone', { platform: 'ios', push_token: FCM_TOKEN }],
    ['an iOS token too short', 'phone', { platform: 'ios', push_token: 'abcd' }],
    ['a device id outside [A-Za-z0-9_.-]', 'my phone', { platform: 'android', push_token: FCM_TOKEN }],
    ['a device id over 64 characters', 'd'.repeat(65), { platform: 'android', push_token: FCM_TOKEN }]
  ]
  for (const [what, deviceId, body] of bad) {
    const res = await put(n, 'ann', deviceId, body)
    t.equal(res.status, 400, what)
    t.equal(res.body.code, 'bad_request', what)
  }
  t.same(await rows(n), [], 'nothing stored')
  const anonymous = await n.app.inject({ method: 'PUT', url: '/v1/devices/phone', payload: { platform: 'android', push_token: FCM_TOKEN } })
  t.equal(anonymous.statusCode, 401, 'the routes sit behind the bearer token')
})

t.test('without push credentials the node runs and stores tokens', async (t) => {
  const n = await node(t)
  t.same(n.services.get(PUSH_SERVICE).providers, [])
  t.equal((await put(n, 'ann', 'web', { platform: 'web', push_token: FCM_TOKEN })).status, 200)
})
