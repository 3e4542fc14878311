import t from 'tap'
import { forEachStore } from '../helpers/stores.js'
import { buildTestApi, type TestApi } from '../helpers/sync-api.js'

async function group (api: TestApi, admin: string, members: string[]): Promise<string> {
  const res = await api.call(admin, { method: 'POST', url: '/v1/conversations', payload: { type: 'group', title: 'g', members } })
  if (res.statusCode !== 201) throw new Error(res.body)
  api.published.length = 0
  return res.json().id
}
const add = (api: TestApi, user: string, convId: string, userIds: string[]) =>
  api.call(user, { method: 'POST', url: `/v1/conversations/${convId}/members`, payload: { user_ids: userIds } })
// with the Content-Type many clients send on every request, body or not
const remove = (api: TestApi, user: string, convId: string, target: string) =>
  api.call(user, { method: 'DELETE', url: `/v1/conversations/${convId}/members/${target}`, headers: { 'content-type': 'application/json' } })
const inboxes = (api: TestApi): string[] => api.published.map(p => p.topic).sort()

t.test('an admin adds members: everyone, the new ones included, gets the membership envelope', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await group(api, 'ann', ['ben'])
  const res = await add(api, 'ann', conv, ['cat', 'ben', 'cat'])
  t.equal(res.statusCode, 200)
  t.same(res.json().members.map((m: { user_id: string }) => m.user_id).sort(), ['ann', 'ben', 'cat'])
  t.same(inboxes(api), ['user/ann/inbox', 'user/ben/inbox', 'user/cat/inbox'])
  t.same(api.published[0]?.payload, { t: 'membership', conv_id: conv, change: 'added', user_ids: ['cat'] }, 'only the users actually added are named')
  t.ok(await api.deps.membership.isMember(conv, 'cat'))

  api.published.length = 0
  const again = await add(api, 'ann', conv, ['cat'])
  t.equal(again.statusCode, 200)
  t.same(api.published, [], 'adding present members changes nothing and announces nothing')
}))

t.test('only group admins add members, never to a direct conversation, and within the limit', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store, { config: { maxGroupMembers: 4 } })
  const conv = await group(api, 'dan', ['eve'])
  const byMember = await add(api, 'eve', conv, ['fay'])
  t.equal(byMember.statusCode, 403)
  t.equal(byMember.json().code, 'forbidden')
  const byStranger = await add(api, 'fay', conv, ['fay'])
  t.equal(byStranger.statusCode, 403)
  t.equal(byStranger.json().code, 'not_member')
  const unknown = await add(api, 'dan', '00000000-0000-4000-8000-000000000000', ['fay'])
  t.equal(unknown.json().code, 'not_member')

  const over = await add(api, 'dan', conv, ['fay', 'gus', 'hal'])
  t.equal(over.statusCode, 413)
  t.match(over.json(), { code: 'too_large', message: /at most 4 members/ })
  t.equal((await add(api, 'dan', conv, ['fay', 'gus'])).statusCode, 200, 'up to the limit is fine')

  const direct = (await api.call('dan', { method: 'POST', url: '/v1/conversations', payload: { type: 'direct', members: ['eve'] } })).json()
  const toDirect = await add(api, 'dan', direct.id, ['fay'])
  t.equal(toDirect.statusCode, 400)
  t.equal(toDirect.json().code, 'bad_request')
  const empty = await add(api, 'dan', conv, [])
  t.equal(empty.statusCode, 400)
  t.match(empty.json().message, /body\.user_ids/)
}))

t.test('an admin removes a member: the rest and the removed user learn it, and the removed user loses access', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await group(api, 'ida', ['jon', 'kay'])
  const res = await remove(api, 'ida', conv, 'kay')
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.same(inboxes(api), ['user/ida/inbox', 'user/jon/inbox', 'user/kay/inbox'])
  t.same(api.published[0]?.payload, { t: 'membership', conv_id: conv, change: 'removed', user_ids: ['kay'] })
  t.notOk(await api.deps.membership.isMember(conv, 'kay'))
  const gone = await api.call('kay', { method: 'GET', url: `/v1/conversations/${conv}` })
  t.equal(gone.statusCode, 403)
  const history = await api.call('kay', { method: 'GET', url: `/v1/conversations/${conv}/events` })
  t.equal(history.json().code, 'not_member')

  const twice = await remove(api, 'ida', conv, 'kay')
  t.equal(twice.statusCode, 404)
  t.equal(twice.json().code, 'not_found')
}))

t.test('a member may remove only themselves; the last admin leaving hands the group on', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await group(api, 'lou', ['mia', 'ned'])
  const other = await remove(api, 'mia', conv, 'ned')
  t.equal(other.statusCode, 403)
  t.equal(other.json().code, 'forbidden')

  t.equal((await remove(api, 'mia', conv, 'mia')).statusCode, 204, 'anyone may leave')
  t.same(inboxes(api), ['user/lou/inbox', 'user/mia/inbox', 'user/ned/inbox'])

  t.equal((await remove(api, 'lou', conv, 'lou')).statusCode, 204, 'the admin may leave too')
  const left = (await api.call('ned', { method: 'GET', url: `/v1/conversations/${conv}` })).json()
  t.same(left.members.map((m: { user_id: string, role: string }) => [m.user_id, m.role]), [['ned', 'admin']],
    'the remaining member became admin')

  const direct = (await api.call('lou', { method: 'POST', url: '/v1/conversations', payload: { type: 'direct', members: ['ned'] } })).json()
  const leaveDirect = await remove(api, 'lou', direct.id, 'lou')
  t.equal(leaveDirect.statusCode, 400, 'direct conversations keep their two members')
}))

t.test('a member sets and clears their own mute', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await group(api, 'oli', ['pia'])
  const until = '2031-05-06T07:08:09.000Z'
  const set = await api.call('pia', { method: 'PATCH', url: `/v1/conversations/${conv}/members/me`, payload: { muted_until: '2031-05-06T09:08:09+02:00' } })
  t.equal(set.statusCode, 200)
  t.same(set.json(), { conv_id: conv, user_id: 'pia', muted_until: until })
  const seen = (await api.call('pia', { method: 'GET', url: `/v1/conversations/${conv}` })).json()
  t.equal(seen.muted_until, until)
  const other = (await api.call('oli', { method: 'GET', url: `/v1/conversations/${conv}` })).json()
  t.equal(other.muted_until, null, 'mute is per member')

  const clear = await api.call('pia', { method: 'PATCH', url: `/v1/conversations/${conv}/members/me`, payload: { muted_until: null } })
  t.same(clear.json(), { conv_id: conv, user_id: 'pia', muted_until: null })

  const bad = await api.call('pia', { method: 'PATCH', url: `/v1/conversations/${conv}/members/me`, payload: { muted_until: 'tomorrow' } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().message, /body\.muted_until/)
  const missing = await api.call('pia', { method: 'PATCH', url: `/v1/conversations/${conv}/members/me`, payload: {} })
  t.match(missing.json(), { code: 'bad_request', message: 'body.muted_until is required' })
  const stranger = await api.call('quy', { method: 'PATCH', url: `/v1/conversations/${conv}/members/me`, payload: { muted_until: null } })
  t.equal(stranger.json().code, 'not_member')
}))
