import t from 'tap'
import { forEachStore } from '../helpers/stores.js'
import { buildTestApi, type TestApi } from '../helpers/sync-api.js'

async function setup (api: TestApi): Promise<string> {
  const res = await api.call('ann', { method: 'POST', url: '/v1/conversations', payload: { type: 'group', title: 'g', members: ['ben', 'cat'] } })
  return res.json().id
}

async function sendAll (api: TestApi, convId: string, sends: Array<[string, object]>): Promise<void> {
  let i = 0
  for (const [user, body] of sends) {
    const res = await api.call(user, { method: 'POST', url: `/v1/conversations/${convId}/messages`, payload: { client_msg_id: `m${++i}`, ...body } })
    if (res.statusCode !== 201) throw new Error(`send ${i} failed: ${res.body}`)
  }
}

const history = async (api: TestApi, user: string, convId: string, query = '') => {
  const res = await api.call(user, { method: 'GET', url: `/v1/conversations/${convId}/events${query}` })
  return { status: res.statusCode, body: res.json() }
}
const seqs = (events: Array<{ seq: number }>): number[] => events.map(e => e.seq)

// seq:        1..4 texts, then edits, a delete and reactions aimed back at them
const THREAD: Array<[string, object]> = [
  ['ann', { type: 'text', text: 'one' }],
  ['ben', { type: 'text', text: 'two' }],
  ['ann', { type: 'text', text: 'three' }],
  ['ben', { type: 'text', text: 'four', reply_to: 1 }],
  ['ann', { type: 'edit', target_seq: 1, text: 'one!' }],
  ['ben', { type: 'delete', target_seq: 2 }],
  ['ann', { type: 'reaction', target_seq: 3, emoji: '👍' }],
  ['ben', { type: 'reaction', target_seq: 3, emoji: '❤️' }],
  ['cat', { type: 'reaction', target_seq: 3, emoji: '👍' }],
  ['ann', { type: 'reaction', target_seq: 3, emoji: '🎉' }],
  ['ben', { type: 'reaction', target_seq: 3, emoji: null }],
  ['ann', { type: 'edit', target_seq: 1, text: 'one!!' }]
]

t.test('a page of old messages comes folded with the edits, deletes and reactions that came after it', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await setup(api)
  await sendAll(api, conv, THREAD)

  const { status, body } = await history(api, 'cat', conv, '?after_seq=0&limit=4')
  t.equal(status, 200)
  t.same(seqs(body.events), [1, 2, 3, 4])
  t.equal(body.has_more, true)
  t.match(body.events[0], { t: 'event', conv_id: conv, seq: 1, sender_id: 'ann', client_msg_id: 'm1', type: 'text', text: 'one' },
    'events are the envelopes as stored')
  t.ok(!Number.isNaN(Date.parse(body.events[0].ts)))
  const ts = body.events.map((e: { ts: string }) => e.ts)
  t.same(body.messages, [
    { seq: 1, sender_id: 'ann', text: 'one!!', edited: true, deleted: false, reactions: {}, ts: ts[0] },
    { seq: 2, sender_id: 'ben', text: '', edited: false, deleted: true, reactions: {}, ts: ts[1] },
    { seq: 3, sender_id: 'ann', text: 'three', edited: false, deleted: false, reactions: { '👍': ['cat'], '🎉': ['ann'] }, ts: ts[2] },
    { seq: 4, sender_id: 'ben', text: 'four', edited: false, deleted: false, reactions: {}, reply_to: 1, ts: ts[3] }
  ], 'the last edit wins, a delete blanks, one reaction per user with null taking it back')
}))

t.test('history pages backwards from the newest and forwards from a seq', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await setup(api)
  await sendAll(api, conv, THREAD)

  const newest = await history(api, 'ann', conv, '?limit=5')
  t.same(seqs(newest.body.events), [8, 9, 10, 11, 12], 'no bound: the newest, ascending')
  t.equal(newest.body.has_more, true)
  t.same(newest.body.messages, [], 'reactions and edits are events, not messages')
  t.match(newest.body.events.find((e: { seq: number }) => e.seq === 11), { type: 'reaction', sender_id: 'ben', target_seq: 3, emoji: null },
    'a withdrawn reaction keeps its null emoji')
  const older = await history(api, 'ann', conv, '?before_seq=8&limit=5')
  t.same(seqs(older.body.events), [3, 4, 5, 6, 7])
  t.equal(older.body.has_more, true)
  const oldest = await history(api, 'ann', conv, '?before_seq=3&limit=5')
  t.same(seqs(oldest.body.events), [1, 2])
  t.equal(oldest.body.has_more, false)

  const forward = await history(api, 'ann', conv, '?after_seq=9&limit=2')
  t.same(seqs(forward.body.events), [10, 11])
  t.equal(forward.body.has_more, true)
  const end = await history(api, 'ann', conv, '?after_seq=11&limit=2')
  t.same(seqs(end.body.events), [12])
  t.equal(end.body.has_more, false)
  const past = await history(api, 'ann', conv, '?after_seq=12')
  t.same(past.body, { events: [], messages: [], has_more: false })
  const between = await history(api, 'ann', conv, '?after_seq=2&before_seq=6&limit=10')
  t.same(seqs(between.body.events), [3, 4, 5], 'both bounds: the events strictly between')
  t.equal(between.body.has_more, false)
  const all = await history(api, 'ann', conv)
  t.same(seqs(all.body.events), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'the default limit (50) holds them all')
  t.equal(all.body.has_more, false)
}))

t.test('history is for members only and its bounds are checked', t => forEachStore(t, async (t, store) => {
  const api = await buildTestApi(t, store)
  const conv = await setup(api)
  const empty = await history(api, 'ben', conv)
  t.same(empty, { status: 200, body: { events: [], messages: [], has_more: false } })
  for (const url of [`/v1/conversations/${conv}/events`, '/v1/conversations/00000000-0000-4000-8000-000000000000/events']) {
    const res = await api.call('dora', { method: 'GET', url })
    t.equal(res.statusCode, 403, url)
    t.equal(res.json().code, 'not_member', url)
  }
  for (const query of ['?limit=0', '?limit=201', '?after_seq=-1', '?before_seq=0', '?after_seq=1.5', '?before_seq=x']) {
    const res = await history(api, 'ann', conv, query)
    t.equal(res.status, 400, query)
    t.match(res.body, { code: 'bad_request', message: /^querystring\.(limit|after_seq|before_seq) / }, query)
  }
}))
