import t from 'tap'
import { forEachStore } from '../helpers/stores.js'
import { buildTestApi, type TestApi } from '../helpers/sync-api.js'

const create = (api: TestApi, user: string, payload: object) =>
  api.call(user, { method: 'POST', url: '/v1/conversations', payload })
const ids = (members: Array<{ user_id: string }>): string[] => members.map(m => m.user_id).sort()

t.test('a direct conversation is created once per pair: 201 first, then 200 with the same one from either member', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const first = await create(api, 'alice', { type: 'direct', members: ['bob'] })
  t.equal(first.statusCode, 201)
  const conv = first.json()
  t.match(conv, { type: 'direct', title: null, last_seq: 0 })
  t.match(conv.id, /^[0-9a-f-]{36}$/)
  t.ok(!Number.isNaN(Date.parse(conv.created_at)), 'created_at is an ISO timestamp')
  t.same(ids(conv.members), ['alice', 'bob'])
  t.same(conv.members.find((m: { user_id: string }) => m.user_id === 'bob'), { user_id: 'bob', role: 'member', display_name: 'bob' },
    'a user never seen before gets a row with display name = id')

  const again = await create(api, 'alice', { type: 'direct', members: ['bob'] })
  t.equal(again.statusCode, 200)
  t.equal(again.json().id, conv.id)
  const fromBob = await create(api, 'bob', { type: 'direct', members: ['alice'] })
  t.equal(fromBob.statusCode, 200)
  t.equal(fromBob.json().id, conv.id)

  t.same(api.published, [
    { topic: 'user/alice/inbox', payload: { t: 'membership', conv_id: conv.id, change: 'added', user_ids: ['alice', 'bob'] } },
    { topic: 'user/bob/inbox', payload: { t: 'membership', conv_id: conv.id, change: 'added', user_ids: ['alice', 'bob'] } }
  ], 'only the creation is announced, to both members')
  t.ok(await api.deps.membership.isMember(conv.id, 'bob'))
}))

t.test('concurrent creations of one pair\'s direct conversation make one conversation', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const answers = await Promise.all([
    ...Array.from({ length: 4 }, () => create(api, 'carol', { type: 'direct', members: ['dave'] })),
    ...Array.from({ length: 4 }, () => create(api, 'dave', { type: 'direct', members: ['carol'] }))
  ])
  t.same(answers.map(a => a.statusCode).sort(), [200, 200, 200, 200, 200, 200, 200, 201])
  t.equal(new Set(answers.map(a => a.json().id)).size, 1)
  const rows = await store.query('SELECT id FROM conversations')
  t.equal(rows.length, 1)
}))

t.test('a direct conversation needs exactly one other user and no title', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  for (const [payload, why] of [
    [{ type: 'direct', members: ['erin'] }, 'with yourself'],
    [{ type: 'direct', members: ['frank', 'gina'] }, 'with two others'],
    [{ type: 'direct', members: ['frank'], title: 'us' }, 'with a title']
  ] as const) {
    const res = await create(api, 'erin', payload)
    t.equal(res.statusCode, 400, why)
    t.equal(res.json().code, 'bad_request', why)
  }
  t.equal((await store.query('SELECT id FROM conversations')).length, 0)
}))

t.test('a group makes its creator admin, creates unknown members and is announced to everyone', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  // a token's name becomes the display name; members named by others start as their id
  await api.call('henry', { method: 'GET', url: '/v1/me', headers: api.auth('henry', 'Henry H.') })
  const res = await create(api, 'henry', { type: 'group', title: ' Hikers ', members: ['ivy', 'jack', 'ivy', 'henry'] })
  t.equal(res.statusCode, 201)
  const conv = res.json()
  t.match(conv, { type: 'group', title: 'Hikers', last_seq: 0 })
  t.same(conv.members.sort((a: { user_id: string }, b: { user_id: string }) => a.user_id.localeCompare(b.user_id)), [
    { user_id: 'henry', role: 'admin', display_name: 'Henry H.' },
    { user_id: 'ivy', role: 'member', display_name: 'ivy' },
    { user_id: 'jack', role: 'member', display_name: 'jack' }
  ])
  t.same(api.published.map(p => p.topic).sort(), ['user/henry/inbox', 'user/ivy/inbox', 'user/jack/inbox'])
  for (const p of api.published) t.same((p.payload as { user_ids: string[] }).user_ids.sort(), ['henry', 'ivy', 'jack'])
}))

t.test('a group needs a title and stays within the member limit', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store, { config: { maxGroupMembers: 3 } })
  const noTitle = await create(api, 'kim', { type: 'group', members: ['lee'] })
  t.equal(noTitle.statusCode, 400)
  t.match(noTitle.json(), { code: 'bad_request', message: /title/ })
  const blank = await create(api, 'kim', { type: 'group', title: '   ', members: ['lee'] })
  t.equal(blank.statusCode, 400)
  const atLimit = await create(api, 'kim', { type: 'group', title: 'three', members: ['lee', 'max'] })
  t.equal(atLimit.statusCode, 201, 'the creator plus two is three')
  const over = await create(api, 'kim', { type: 'group', title: 'four', members: ['lee', 'max', 'ned'] })
  t.equal(over.statusCode, 413)
  t.match(over.json(), { code: 'too_large', message: /at most 3 members/ })
}))

t.test('conversation bodies are checked against the schema, naming the field', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const cases: Array<[object, RegExp]> = [
    [{ type: 'channel', members: ['x'] }, /body\.type must be one of "direct", "group"/],
    [{ type: 'group', title: 'x' }, /body\.members is required/],
    [{ type: 'group', title: 'x', members: [] }, /body\.members/],
    [{ type: 'group', title: 5, members: ['x'] }, /body\.title must be string/],
    [{ type: 'direct', members: ['not valid!'] }, /body\.members\[0\]/]
  ]
  for (const [payload, message] of cases) {
    const res = await create(api, 'oscar', payload)
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.match(res.json(), { code: 'bad_request', message }, JSON.stringify(payload))
  }
}))

t.test('details are for members only; an unknown conversation answers the same not_member', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = (await create(api, 'pat', { type: 'group', title: 'g', members: ['quinn'] })).json()
  const mine = await api.call('quinn', { method: 'GET', url: `/v1/conversations/${conv.id}` })
  t.equal(mine.statusCode, 200)
  t.match(mine.json(), { id: conv.id, type: 'group', title: 'g', last_message: null, unread_count: 0, markers: { delivered_seq: 0, read_seq: 0 }, muted_until: null })
  t.same(ids(mine.json().members), ['pat', 'quinn'])

  const stranger = await api.call('rita', { method: 'GET', url: `/v1/conversations/${conv.id}` })
  const unknown = await api.call('rita', { method: 'GET', url: '/v1/conversations/00000000-0000-4000-8000-000000000000' })
  t.equal(stranger.statusCode, 403)
  t.equal(unknown.statusCode, 403)
  t.equal(stranger.json().code, 'not_member')
  t.equal(unknown.json().code, 'not_member')
  const malformed = await api.call('rita', { method: 'GET', url: '/v1/conversations/nope' })
  t.equal(malformed.statusCode, 400)
  t.match(malformed.json(), { code: 'bad_request', message: /params\.id/ })
}))

const send = async (api: TestApi, user: string, convId: string, body: object): Promise<number> => {
  const res = await api.call(user, { method: 'POST', url: `/v1/conversations/${convId}/messages`, payload: body })
  if (res.statusCode !== 201) throw new Error(`send failed: ${res.statusCode} ${res.body}`)
  return res.json().seq
}

t.test('the list shows newest activity first with previews, unread counts and own markers', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const quiet = (await create(api, 'sam', { type: 'group', title: 'quiet', members: ['tom'] })).json()
  const chat = (await create(api, 'sam', { type: 'direct', members: ['tom'] })).json()
  const busy = (await create(api, 'sam', { type: 'group', title: 'busy', members: ['tom', 'uma'] })).json()

  // chat: the newest message is deleted, so the preview is the one before, as edited
  await send(api, 'tom', chat.id, { client_msg_id: 'c1', type: 'text', text: 'hello' })
  await send(api, 'tom', chat.id, { client_msg_id: 'c2', type: 'edit', target_seq: 1, text: 'hello, Sam' })
  await send(api, 'tom', chat.id, { client_msg_id: 'c3', type: 'text', text: 'oops' })
  await send(api, 'tom', chat.id, { client_msg_id: 'c4', type: 'delete', target_seq: 3 })
  // busy: three from others, one own, a reaction; sam has read up to seq 1
  await send(api, 'tom', busy.id, { client_msg_id: 'b1', type: 'text', text: 'one' })
  await send(api, 'uma', busy.id, { client_msg_id: 'b2', type: 'text', text: 'two' })
  await send(api, 'sam', busy.id, { client_msg_id: 'b3', type: 'text', text: 'mine' })
  await send(api, 'uma', busy.id, { client_msg_id: 'b4', type: 'reaction', target_seq: 3, emoji: '👍' })
  await send(api, 'tom', busy.id, { client_msg_id: 'b5', type: 'text', text: 'three' })
  await store.query('UPDATE members SET read_seq = 1, delivered_seq = 4 WHERE conv_id = $1 AND user_id = $2', [busy.id, 'sam'])

  const res = await api.call('sam', { method: 'GET', url: '/v1/conversations' })
  t.equal(res.statusCode, 200)
  const { conversations, next_cursor: next } = res.json()
  t.equal(next, null)
  t.same(conversations.map((c: { id: string }) => c.id), [busy.id, chat.id, quiet.id], 'newest activity first')
  const [b, c, q] = conversations
  t.match(b, { last_seq: 5, unread_count: 2, markers: { delivered_seq: 4, read_seq: 1 }, last_message: { seq: 5, sender_id: 'tom', text: 'three', edited: false } })
  t.match(c, { last_seq: 4, unread_count: 1, last_message: { seq: 1, sender_id: 'tom', text: 'hello, Sam', edited: true } },
    'deleted messages are neither previewed nor counted')
  t.match(q, { last_seq: 0, unread_count: 0, last_message: null })
  t.ok(!Number.isNaN(Date.parse(b.last_message.ts)))

  const tom = (await api.call('tom', { method: 'GET', url: '/v1/conversations' })).json()
  t.equal(tom.conversations[0].unread_count, 2, "tom's unread count leaves out his own messages")
  const uma = (await api.call('uma', { method: 'GET', url: '/v1/conversations' })).json()
  t.same(uma.conversations.map((x: { id: string }) => x.id), [busy.id], 'a user sees only their own conversations')
}))

t.test('the list pages with an opaque cursor, without gaps or repeats', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  for (let i = 0; i < 5; i++) await create(api, 'vera', { type: 'group', title: `g${i}`, members: ['walt'] })
  const all = (await api.call('vera', { method: 'GET', url: '/v1/conversations?limit=100' })).json()
  t.equal(all.conversations.length, 5)

  const seen: string[] = []
  let cursor: string | null = null
  const sizes: number[] = []
  do {
    const url: string = `/v1/conversations?limit=2${cursor !== null ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const page = await api.call('vera', { method: 'GET', url })
    t.equal(page.statusCode, 200)
    const body = page.json()
    sizes.push(body.conversations.length)
    seen.push(...body.conversations.map((c: { id: string }) => c.id))
    cursor = body.next_cursor
  } while (cursor !== null && sizes.length < 10)
  t.same(sizes, [2, 2, 1])
  t.same(seen, all.conversations.map((c: { id: string }) => c.id))

  for (const url of ['/v1/conversations?cursor=garbage', '/v1/conversations?limit=0', '/v1/conversations?limit=101', '/v1/conversations?limit=two']) {
    const res = await api.call('vera', { method: 'GET', url })
    t.equal(res.statusCode, 400, url)
    t.match(res.json(), { code: 'bad_request', message: /querystring\.(cursor|limit)/ }, url)
  }
  const dflt = (await api.call('walt', { method: 'GET', url: '/v1/conversations' })).json()
  t.equal(dflt.conversations.length, 5, 'the default limit (20) holds them all')
}))
