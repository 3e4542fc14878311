// Every membership change the REST API makes is also a row of the membership change log,
// committed with it (core/membership/change-log.ts): that row is how other nodes learn the
// change when its announcement is lost. A refused change leaves no row.
import t from 'tap'
import { forEachStore } from '../helpers/stores.js'
import { buildTestApi } from '../helpers/sync-api.js'

interface LogRow { conv_id: string, change: string, user_ids: string[] }

t.test('creation, additions, removals and leaving are logged in order; refusals are not', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store, { config: { maxGroupMembers: 4 } })
  const log = async (): Promise<LogRow[]> => await store.query<LogRow>('SELECT conv_id::text AS conv_id, change, user_ids FROM membership_changes ORDER BY id')

  const direct = (await api.call('ann', { method: 'POST', url: '/v1/conversations', payload: { type: 'direct', members: ['ben'] } })).json().id as string
  const again = await api.call('ben', { method: 'POST', url: '/v1/conversations', payload: { type: 'direct', members: ['ann'] } })
  t.equal(again.statusCode, 200, 'the pair\'s direct conversation exists already')
  const group = (await api.call('ann', { method: 'POST', url: '/v1/conversations', payload: { type: 'group', title: 'g', members: ['ben'] } })).json().id as string
  t.equal((await api.call('ann', { method: 'POST', url: `/v1/conversations/${group}/members`, payload: { user_ids: ['cal', 'ben'] } })).statusCode, 200)
  t.equal((await api.call('ann', { method: 'DELETE', url: `/v1/conversations/${group}/members/ben` })).statusCode, 204)
  t.equal((await api.call('cal', { method: 'DELETE', url: `/v1/conversations/${group}/members/cal` })).statusCode, 204)

  const refused = [
    await api.call('ann', { method: 'POST', url: `/v1/conversations/${group}/members`, payload: { user_ids: ['d1', 'd2', 'd3', 'd4'] } }),
    await api.call('ben', { method: 'POST', url: `/v1/conversations/${group}/members`, payload: { user_ids: ['dan'] } }),
    await api.call('ann', { method: 'DELETE', url: `/v1/conversations/${group}/members/nobody` }),
    await api.call('ann', { method: 'POST', url: `/v1/conversations/${group}/members`, payload: { user_ids: ['ann'] } })
  ].map(r => r.statusCode)
  t.same(refused, [413, 403, 404, 200], 'over the cap, not a member, not in the group, nothing new')

  t.same((await log()).map(r => ({ ...r, user_ids: [...r.user_ids].sort() })), [
    { conv_id: direct, change: 'added', user_ids: ['ann', 'ben'] },
    { conv_id: group, change: 'added', user_ids: ['ann', 'ben'] },
    { conv_id: group, change: 'added', user_ids: ['cal'] },
    { conv_id: group, change: 'removed', user_ids: ['ben'] },
    { conv_id: group, change: 'removed', user_ids: ['cal'] }
  ], 'one row per change that happened, none for the direct conversation found again or for refusals')
}))
