// GET /v1/sync over the REST sidecar (real store, both drivers): what counts as changed
// (events, own markers, mute, membership either way, title), what is not reported (other
// members' markers), removals, paging, and the cursors it refuses.
import t, { type Test } from 'tap'
import { forEachStore } from '../helpers/stores.js'
import { buildTestApi, type TestApi } from '../helpers/sync-api.js'
import { encodeSyncCursor, decodeSyncCursor, snapshotXmin } from '../../core/sync/cursor.js'
import { pruneRemovals } from '../../core/sync/state.js'
import { waitFor } from '../helpers/wait.js'
import type { SyncAnswer } from '../../schemas/index.js'

async function sync (t: Test, api: TestApi, user: string, cursor?: string, limit?: number): Promise<SyncAnswer> {
  const query = new URLSearchParams()
  if (cursor !== undefined) query.set('cursor', cursor)
  if (limit !== undefined) query.set('limit', String(limit))
  const res = await api.call(user, { method: 'GET', url: `/v1/sync?${query.toString()}` })
  t.equal(res.statusCode, 200, res.body)
  return res.json() as SyncAnswer
}

/** Follows has_more to the end; answers every page and the cursor to keep. */
async function syncAll (t: Test, api: TestApi, user: string, cursor?: string, limit?: number): Promise<{ pages: SyncAnswer[], cursor: string }> {
  const pages: SyncAnswer[] = []
  let next = cursor
  for (let i = 0; i < 100; i++) {
    const page = await sync(t, api, user, next, limit)
    pages.push(page)
    next = page.cursor
    if (!page.has_more) return { pages, cursor: next }
  }
  throw new Error('sync never finished')
}

const ids = (a: SyncAnswer): string[] => a.conversations.map(c => c.id)

async function create (api: TestApi, user: string, payload: object): Promise<string> {
  const res = await api.call(user, { method: 'POST', url: '/v1/conversations', payload })
  if (res.statusCode !== 201) throw new Error(res.body)
  return res.json().id
}

async function send (api: TestApi, user: string, convId: string, id: string, text = 'hi'): Promise<number> {
  const res = await api.call(user, { method: 'POST', url: `/v1/conversations/${convId}/messages`, payload: { client_msg_id: id, type: 'text', text } })
  if (res.statusCode !== 201) throw new Error(res.body)
  return res.json().seq
}

/** A coalesced marker write as the receipts plugin makes it: max wins, nothing else set. */
async function writeMarkers (api: TestApi, convId: string, userId: string, delivered: number, read: number): Promise<void> {
  await api.deps.store.query(
    `UPDATE members m SET delivered_seq = GREATEST(m.delivered_seq, v.d), read_seq = GREATEST(m.read_seq, v.r)
     FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[]) AS v(conv_id, user_id, d, r)
     WHERE m.conv_id = v.conv_id AND m.user_id = v.user_id`, [[convId], [userId], [delivered], [read]])
}

t.test('a full sync answers every conversation as the list shows it; then nothing until something changes', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const direct = await create(api, 'amy', { type: 'direct', members: ['bo'] })
  const group = await create(api, 'bo', { type: 'group', title: 'Trip', members: ['amy', 'cy'] })
  await create(api, 'bo', { type: 'direct', members: ['cy'] }) // not amy's
  await send(api, 'bo', direct, 'd1')
  await send(api, 'bo', direct, 'd2')
  await send(api, 'amy', group, 'g1')

  const full = await sync(t, api, 'amy')
  t.same(ids(full).sort(), [direct, group].sort())
  t.same(full.removed, [])
  t.equal(full.has_more, false)
  const list = (await api.call('amy', { method: 'GET', url: '/v1/conversations' })).json().conversations
  for (const c of full.conversations) {
    t.same(c, list.find((l: { id: string }) => l.id === c.id), 'the same item as GET /v1/conversations, unread_count and markers included')
  }
  t.match(full.conversations.find(c => c.id === direct), { last_seq: 2, unread_count: 2, markers: { delivered_seq: 0, read_seq: 0 } })
  t.match(full.conversations.find(c => c.id === group), { last_seq: 1, unread_count: 0 })

  const quiet = await sync(t, api, 'amy', full.cursor)
  t.same(quiet, { conversations: [], removed: [], cursor: quiet.cursor, has_more: false }, 'nothing changed: nothing answered')
  const still = await sync(t, api, 'amy', quiet.cursor)
  t.same(still.conversations, [])

  await send(api, 'cy', group, 'g2')
  const after = await sync(t, api, 'amy', still.cursor)
  t.same(ids(after), [group], 'a new event in one conversation reports that one')
  t.match(after.conversations[0], { last_seq: 2, unread_count: 1, last_message: { seq: 2, sender_id: 'cy' } })
}))

t.test('own markers and mute are changes; another member\'s markers are not', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await create(api, 'dee', { type: 'direct', members: ['eli'] })
  for (let i = 1; i <= 3; i++) await send(api, 'eli', conv, `m${i}`)
  const base = await sync(t, api, 'dee')
  t.match(base.conversations[0], { unread_count: 3 })

  await writeMarkers(api, conv, 'eli', 3, 3)
  const theirs = await sync(t, api, 'dee', base.cursor)
  t.same(theirs.conversations, [], 'eli reading changes nothing dee sees in a sync')

  await writeMarkers(api, conv, 'dee', 3, 2)
  const mine = await sync(t, api, 'dee', theirs.cursor)
  t.same(ids(mine), [conv])
  t.match(mine.conversations[0], { markers: { delivered_seq: 3, read_seq: 2 }, unread_count: 1 })

  await writeMarkers(api, conv, 'dee', 1, 1)
  t.same((await sync(t, api, 'dee', mine.cursor)).conversations, [], 'a stale marker write changes no row: nothing to report')

  const muted = await api.call('dee', { method: 'PATCH', url: `/v1/conversations/${conv}/members/me`, payload: { muted_until: '2031-01-01T00:00:00Z' } })
  t.equal(muted.statusCode, 200)
  const mute = await sync(t, api, 'dee', mine.cursor)
  t.same(ids(mute), [conv])
  t.equal(mute.conversations[0]?.muted_until, '2031-01-01T00:00:00.000Z')
}))

t.test('membership: joining, others joining, leaving, being removed and coming back', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const mine = await create(api, 'fox', { type: 'group', title: 'Mine', members: ['gil'] })
  const base = await sync(t, api, 'hue')
  t.same(base.conversations, [], 'hue is in nothing yet')

  const theirs = await create(api, 'gil', { type: 'group', title: 'Theirs', members: ['hue', 'fox'] })
  const joined = await sync(t, api, 'hue', base.cursor)
  t.same(ids(joined), [theirs], 'a conversation hue was added to')

  const foxBefore = await sync(t, api, 'fox')
  const add = await api.call('fox', { method: 'POST', url: `/v1/conversations/${mine}/members`, payload: { user_ids: ['ida'] } })
  t.equal(add.statusCode, 200)
  const others = await sync(t, api, 'fox', foxBefore.cursor)
  t.same(ids(others), [mine], 'someone else joining changes the member list')
  t.same(others.conversations[0]?.members.map(m => m.user_id).sort(), ['fox', 'gil', 'ida'])

  const left = await api.call('hue', { method: 'DELETE', url: `/v1/conversations/${theirs}/members/hue` })
  t.equal(left.statusCode, 204)
  const gone = await sync(t, api, 'hue', joined.cursor)
  t.same(gone, { conversations: [], removed: [theirs], cursor: gone.cursor, has_more: false }, 'leaving is reported as removed')
  t.same((await sync(t, api, 'hue')).removed, [], 'a full sync lists no removals: what it does not answer is gone')

  const foxSeen = await sync(t, api, 'fox', others.cursor)
  t.same(ids(foxSeen), [theirs], 'the others see the member list change')
  const removed = await api.call('gil', { method: 'DELETE', url: `/v1/conversations/${theirs}/members/fox` })
  t.equal(removed.statusCode, 204)
  const kicked = await sync(t, api, 'fox', foxSeen.cursor)
  t.same(kicked.removed, [theirs], 'being removed is reported as removed')
  t.same(kicked.conversations, [])

  const back = await api.call('gil', { method: 'POST', url: `/v1/conversations/${theirs}/members`, payload: { user_ids: ['fox'] } })
  t.equal(back.statusCode, 200)
  const returned = await sync(t, api, 'fox', foxSeen.cursor)
  t.same(ids(returned), [theirs], 'removed and added again since the cursor: a member, not removed')
  t.same(returned.removed, [])
}))

t.test('a title change is a change', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await create(api, 'jo', { type: 'group', title: 'Old', members: ['kai'] })
  const base = await sync(t, api, 'kai')
  // no route renames a group yet: whatever does, the trigger stamps it
  await store.query('UPDATE conversations SET title = $2 WHERE id = $1', [conv, 'New'])
  const renamed = await sync(t, api, 'kai', base.cursor)
  t.same(ids(renamed), [conv])
  t.equal(renamed.conversations[0]?.title, 'New')
}))

t.test('pages: bounded by limit, in id order, and a change behind the page is in the next sync', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const convs: string[] = []
  for (let i = 0; i < 7; i++) convs.push(await create(api, 'lu', { type: 'group', title: `g${i}`, members: ['max'] }))
  const sorted = [...convs].sort()

  const first = await sync(t, api, 'lu', undefined, 3)
  t.equal(first.has_more, true)
  t.same(ids(first), sorted.slice(0, 3))
  // changes land while the client pages: one behind the page, one ahead of it
  await send(api, 'max', sorted[0] as string, 'behind')
  await send(api, 'max', sorted[6] as string, 'ahead')
  const second = await sync(t, api, 'lu', first.cursor, 3)
  t.equal(second.has_more, true)
  t.same(ids(second), sorted.slice(3, 6))
  const third = await sync(t, api, 'lu', second.cursor, 3)
  t.equal(third.has_more, false)
  t.same(ids(third), sorted.slice(6))
  t.equal(third.conversations[0]?.last_seq, 1, 'a page shows the state as it reads it')

  const next = await syncAll(t, api, 'lu', third.cursor, 3)
  const seen = next.pages.flatMap(ids)
  t.ok(seen.includes(sorted[0] as string), 'the change behind the page comes with the next sync')
  t.match(next.pages.flatMap(p => p.conversations).find(c => c.id === sorted[0]), { last_seq: 1 })

  const limited = await api.call('lu', { method: 'GET', url: '/v1/sync?limit=101' })
  t.equal(limited.statusCode, 400)
  t.match(limited.json(), { code: 'bad_request', message: /limit/ })
  t.equal((await api.call('lu', { method: 'GET', url: '/v1/sync?limit=0' })).statusCode, 400)
}))

t.test('bad cursors answer bad_request; cursors the database can no longer answer, cursor_expired', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await create(api, 'ned', { type: 'group', title: 'g', members: ['oz'] })
  const base = await sync(t, api, 'oz')
  const good = decodeSyncCursor(base.cursor)

  for (const [cursor, why] of [
    ['nope', 'not base64url of a cursor'],
    ['a%20b', 'not base64url at all'],
    [Buffer.from('s2.0123456789abcdef.12:12:.3:3:.').toString('base64url'), 'upto without after'],
    [Buffer.from('s2.0123456789abcdef...').toString('base64url'), 'no position'],
    [Buffer.from(`s1.${good.epoch}.${good.since ?? ''}..`).toString('base64url'), 'another version'],
    [Buffer.from(`s2.${good.epoch}.99999999999999999999999:99999999999999999999999:..`).toString('base64url'), 'an xid over 64 bits'],
    [Buffer.from(`s2.${good.epoch}.9:9:.3:3:.${conv}`).toString('base64url'), 'since after upto'],
    [Buffer.from(`s2.${good.epoch}.3:3:.4:4:.not-a-uuid`).toString('base64url'), 'after not a UUID'],
    [Buffer.from(`s2.${good.epoch}.5:9:4..`).toString('base64url'), 'a running transaction below xmin'],
    [Buffer.from(`s2.${good.epoch}.5:9..`).toString('base64url'), 'a snapshot without its list'],
    ['x'.repeat(201), 'over 200 characters']
  ] as const) {
    const res = await api.call('oz', { method: 'GET', url: `/v1/sync?cursor=${cursor}` })
    t.equal(res.statusCode, 400, why)
    t.equal(res.json().code, 'bad_request', why)
  }

  const otherDb = encodeSyncCursor({ ...good, epoch: 'ffffffffffffffff' })
  const fromElsewhere = await api.call('oz', { method: 'GET', url: `/v1/sync?cursor=${otherDb}` })
  t.equal(fromElsewhere.statusCode, 400)
  t.match(fromElsewhere.json(), { code: 'cursor_expired', message: /another database/ })
  const ahead = encodeSyncCursor({ ...good, since: `${2n ** 62n}:${2n ** 62n}:` })
  t.match((await api.call('oz', { method: 'GET', url: `/v1/sync?cursor=${ahead}` })).json(), { code: 'cursor_expired', message: /ahead/ })

  // a removal pruned past its retention: cursors that might have needed it expire
  t.equal((await api.call('ned', { method: 'DELETE', url: `/v1/conversations/${conv}/members/oz` })).statusCode, 204)
  const later = await sync(t, api, 'oz', base.cursor)
  t.same(later.removed, [conv])
  t.equal(await pruneRemovals(store, 0), 1)
  const old = await api.call('oz', { method: 'GET', url: `/v1/sync?cursor=${base.cursor}` })
  t.equal(old.statusCode, 400)
  t.match(old.json(), { code: 'cursor_expired', message: /older than the removals/ })
  // xids are the cluster's: another test's database may hold a transaction that began
  // before the removal, and a cursor taken while it runs rightly counts as older than it
  const pruned = BigInt((await store.query<{ x: string }>('SELECT pruned_xid::text AS x FROM sync_state'))[0]?.x ?? '0')
  let newer = later
  await waitFor(async () => {
    newer = await sync(t, api, 'oz')
    return snapshotXmin(decodeSyncCursor(newer.cursor).since ?? '0:0:') > pruned
  }, 'a cursor newer than the pruned removal')
  t.same((await sync(t, api, 'oz', newer.cursor)).removed, [], 'a cursor newer than the pruned removal still works')
  t.same((await sync(t, api, 'oz')).conversations, [], 'a full sync always works')

  // a database emptied by hand gets a new epoch: every cursor of the old one expires
  await store.query('DELETE FROM sync_state')
  t.match((await api.call('oz', { method: 'GET', url: `/v1/sync?cursor=${later.cursor}` })).json(), { code: 'cursor_expired' })
  const fresh = await sync(t, api, 'oz')
  t.not(decodeSyncCursor(fresh.cursor).epoch, good.epoch)
}))

t.test('without a token: 401', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  t.equal((await api.app.inject({ method: 'GET', url: '/v1/sync' })).statusCode, 401)
}))
