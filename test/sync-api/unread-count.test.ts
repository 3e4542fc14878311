// unread_count and the push badge are bounded (core/conversations/unread.ts): exact below
// UNREAD_COUNT_MAX, UNREAD_COUNT_MAX ("999 or more") at and above it, however many events
// a member missed. The histories here are written straight into the store (thousands of
// events; the send path is not what is under test) and read through the REST routes.
import t from 'tap'
import { UNREAD_COUNT_MAX } from '../../schemas/index.js'
import { totalUnread } from '../../core/conversations/unread.js'
import type { Store } from '../../broker/store/index.js'
import { forEachStore } from '../helpers/stores.js'
import { buildTestApi, type TestApi } from '../helpers/sync-api.js'

interface Ev { seq: number, sender: string, type: 'text' | 'reaction' | 'edit' | 'delete', target?: number }

/** A group of `members` with these events (seq 1..n in order) and each member's read_seq. */
async function conversation (store: Store, members: readonly string[], events: readonly Ev[], reads: Readonly<Record<string, number>> = {}): Promise<string> {
  await store.query('INSERT INTO users (id, display_name) SELECT u, u FROM unnest($1::text[]) u ON CONFLICT DO NOTHING', [members])
  const [{ id }] = await store.query<{ id: string }>(
    'INSERT INTO conversations (id, type, title, created_by, last_seq) VALUES (gen_random_uuid(), \'group\', \'g\', $1, $2) RETURNING id::text',
    [members[0], events.length]) as [{ id: string }]
  await store.query('INSERT INTO members (conv_id, user_id, read_seq) SELECT $1, u, r FROM unnest($2::text[], $3::bigint[]) AS x(u, r)',
    [id, members, members.map(m => reads[m] ?? 0)])
  await store.query(
    `INSERT INTO events (conv_id, seq, sender_id, client_msg_id, type, body, target_seq)
     SELECT $1, s, u, 'm' || s, ty, CASE WHEN ty = 'text' THEN '{"text":"hi"}'::jsonb ELSE '{}'::jsonb END, tg
     FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[]) AS x(s, u, ty, tg)`,
    [id, events.map(e => e.seq), events.map(e => e.sender), events.map(e => e.type), events.map(e => e.target ?? null)])
  return id
}

/** What the definition says, counted over the whole history with no cap. */
function expectedUnread (events: readonly Ev[], me: string, readSeq: number): number {
  const deleted = new Set(events.filter(e => e.type === 'delete').map(e => e.target))
  return events.filter(e => e.type === 'text' && e.seq > readSeq && e.sender !== me && !deleted.has(e.seq)).length
}

/** n texts from `sender`, from seq `from` on */
const texts = (n: number, sender: string, from = 1): Ev[] => Array.from({ length: n }, (_, i) => ({ seq: from + i, sender, type: 'text' }))

/** unread_count of `conv` for `user` as the list, the details and a full sync answer it */
async function counts (api: TestApi, user: string, conv: string): Promise<{ list: number, details: number, sync: number }> {
  const list = (await api.call(user, { method: 'GET', url: '/v1/conversations?limit=100' })).json() as { conversations: Array<{ id: string, unread_count: number }> }
  const details = (await api.call(user, { method: 'GET', url: `/v1/conversations/${conv}` })).json() as { unread_count: number }
  const sync = (await api.call(user, { method: 'GET', url: '/v1/sync' })).json() as { conversations: Array<{ id: string, unread_count: number }> }
  return {
    list: list.conversations.find(c => c.id === conv)?.unread_count ?? -1,
    details: details.unread_count,
    sync: sync.conversations.find(c => c.id === conv)?.unread_count ?? -1
  }
}

t.test('more unread than the cap counts as the cap, in the list, the details, a sync and the badge', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const over = await conversation(store, ['ann', 'ben'], texts(UNREAD_COUNT_MAX + 250, 'ben'))
  const at = await conversation(store, ['ann', 'ben'], texts(UNREAD_COUNT_MAX, 'ben'))
  const below = await conversation(store, ['ann', 'ben'], texts(UNREAD_COUNT_MAX - 1, 'ben'))
  const cap = UNREAD_COUNT_MAX
  t.same(await counts(api, 'ann', over), { list: cap, details: cap, sync: cap }, `${cap + 250} unread: ${cap}, "${cap} or more"`)
  t.same(await counts(api, 'ann', at), { list: cap, details: cap, sync: cap })
  t.same(await counts(api, 'ann', below), { list: cap - 1, details: cap - 1, sync: cap - 1 }, 'one below the cap is exact')
  t.same(await counts(api, 'ben', over), { list: 0, details: 0, sync: 0 }, 'all his own')
  t.equal((await totalUnread(store, ['ann'])).get('ann'), cap, 'the badge stops at the cap too')

  await store.query('UPDATE members SET read_seq = $1 WHERE conv_id = $2 AND user_id = $3', [300, over, 'ann'])
  t.same(await counts(api, 'ann', over), { list: cap - 50, details: cap - 50, sync: cap - 50 }, 'read far enough, exact again')
}))

t.test('below the cap the count is exact: own messages, reactions, edits and deleted texts left out, across many windows', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  // 4,000 events, most of which don't count for ann: long runs of her own messages and of
  // reactions (longer than a window), deletes of texts on both sides of her read marker,
  // a text deleted twice, a delete far after its target
  const events: Ev[] = []
  const add = (sender: string, type: Ev['type'], target?: number): void => {
    events.push({ seq: events.length + 1, sender, type, ...(target !== undefined ? { target } : {}) })
  }
  for (let i = 0; i < 4000; i++) {
    const s = events.length + 1
    if (s > 1000 && s <= 1600) add('ann', 'text') // a run of her own
    else if (s > 2000 && s <= 2400) add('cat', 'reaction', 1999)
    else if (s % 7 === 0) add('cat', 'delete', s - 3)
    else if (s % 11 === 0) add('ben', 'edit', s - 1)
    else if (s % 13 === 0) add('ann', 'text')
    else if (s % 5 === 0) add('ben', 'reaction', s - 2)
    else add(s % 2 === 0 ? 'ben' : 'cat', 'text')
  }
  add('cat', 'delete', 6) // again
  add('cat', 'delete', 150) // long after
  // ann has read up to 3,000; dan reads nothing and sends nothing
  const reads = { ann: 3000, ben: 3900 }
  const conv = await conversation(store, ['ann', 'ben', 'cat', 'dan'], events, reads)

  const ann = expectedUnread(events, 'ann', 3000)
  const ben = expectedUnread(events, 'ben', 3900)
  t.ok(ann > 100 && ann < UNREAD_COUNT_MAX, `ann: ${ann} unread, below the cap`)
  t.same(await counts(api, 'ann', conv), { list: ann, details: ann, sync: ann })
  t.same(await counts(api, 'ben', conv), { list: ben, details: ben, sync: ben })
  t.same(await counts(api, 'dan', conv), { list: UNREAD_COUNT_MAX, details: UNREAD_COUNT_MAX, sync: UNREAD_COUNT_MAX },
    `dan: ${expectedUnread(events, 'dan', 0)} unread, capped`)

  // every read marker from 0 to the end, in steps that land inside and between windows
  for (let read = 0; read <= events.length; read += 97) {
    await store.query('UPDATE members SET read_seq = $1 WHERE conv_id = $2 AND user_id = $3', [read, conv, 'ann'])
    const want = Math.min(expectedUnread(events, 'ann', read), UNREAD_COUNT_MAX)
    const got = (await counts(api, 'ann', conv)).details
    if (got !== want) t.fail(`read_seq ${read}: ${got}, want ${want}`)
  }
  t.pass('ann\'s count matches the definition at every read marker tried')
}))

t.test('the badge sums the conversations, stops at the cap, and is 0 with nothing to read', t => forEachStore(t, async (t, store) => {
  await conversation(store, ['eve', 'fay'], texts(300, 'fay'))
  await conversation(store, ['eve', 'fay'], [...texts(200, 'fay'), { seq: 201, sender: 'fay', type: 'delete', target: 7 }])
  await conversation(store, ['eve', 'gus'], texts(40, 'eve')) // her own
  await conversation(store, ['gus', 'hal'], texts(UNREAD_COUNT_MAX + 1, 'hal'))
  await conversation(store, ['ivy', 'hal'], texts(10, 'hal'), { ivy: 10 })
  t.same(Object.fromEntries(await totalUnread(store, ['eve', 'fay', 'gus', 'ivy', 'nobody'])),
    { eve: 499, fay: 0, gus: UNREAD_COUNT_MAX, ivy: 0, nobody: 0 }, 'gus: 40 + the cap of one conversation')

  for (let i = 0; i < 3; i++) await conversation(store, ['eve', 'fay'], texts(400, 'fay'))
  t.same(Object.fromEntries(await totalUnread(store, ['eve'])), { eve: UNREAD_COUNT_MAX }, '499 + 3 × 400: the cap')
  t.same(Object.fromEntries(await totalUnread(store, [])), {}, 'nobody asked')
}))
