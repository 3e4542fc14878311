// Bad input to presence's topic and routes gets its documented error, changes nothing, and
// leaves the connection up; floods and hoards are bounded.
import t from 'tap'
import { MAX_PRESENCE_SUBSCRIPTIONS, ERROR_BURST } from '../../plugins/presence/index.js'
import { MAX_PRESENCE_USERS } from '../../schemas/index.js'
import { ensureUsers } from '../../core/users.js'
import { startNode, connectUser, collect, token } from '../helpers/node.js'
import { suback } from '../helpers/access.js'
import { userId } from '../helpers/fixtures.js'
import { newUsers, presenceOf, say, statsOf, watcher } from './watch.js'

const node = await startNode(t)

const call = (user: string | null, method: 'GET' | 'PATCH', url: string, payload?: unknown, headers: Record<string, string> = {}) => node.app.inject({
  method,
  url,
  headers: { ...(user !== null ? { authorization: `Bearer ${token(node, user)}` } : {}), ...headers },
  ...(payload !== undefined ? { payload: payload as string } : {})
})

t.test('user/<me>/presence: a bad payload gets a bad_request error event, changes nothing, the connection stays', async (t) => {
  const [alice, bob] = await newUsers(node, 'alice', 'bob')
  const viewer = await watcher(t, node, bob)
  await viewer.watch(alice)
  const phone = await connectUser(t, node, alice, 'phone')
  await phone.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  await viewer.next(alice, 'online')
  const bad: Array<[string, string | Buffer]> = [
    ['not JSON', 'away'],
    ['an empty object', '{}'],
    ['an unknown state', '{"state":"busy"}'],
    ['a state in capitals', '{"state":"AWAY"}'],
    ['a number', '{"state":1}'],
    ['an array', '[{"state":"away"}]'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d])]
  ]
  const errors = collect<{ t: string, code: string, message: string }>(phone, bad.length, (topic) => topic === `user/${alice}/inbox`)
  for (const [, payload] of bad) phone.publish(`user/${alice}/presence`, payload, { qos: 0 })
  const got = await errors
  got.forEach((e, i) => t.match(e, { t: 'error', code: 'bad_request', message: /presence|JSON|UTF-8/ }, bad[i]?.[0] ?? ''))
  t.comment(got.map(e => e.message).join(' | '))
  t.ok(phone.connected, 'still connected')
  t.same(await presenceOf(node, bob, [alice]), [{ user_id: alice, state: 'online' }], 'still online: nothing changed')

  // QoS 1 works too (PUBACKed), and unknown fields are ignored as on every client topic
  await phone.publishAsync(`user/${alice}/presence`, JSON.stringify({ state: 'away', user_id: 'someone-else' }), { qos: 1 })
  t.same(await viewer.next(alice, 'away'), { user_id: alice, state: 'away' })
  t.same(viewer.states(alice), ['online', 'away'])
})

t.test('another user\'s presence topic is a protocol violation (the ACL closes the connection)', async (t) => {
  const [alice, bob] = await newUsers(node, 'alice', 'bob')
  const phone = await connectUser(t, node, alice, 'phone')
  phone.on('error', () => {})
  const closed = new Promise<void>(resolve => phone.once('close', () => resolve()))
  phone.publish(`user/${bob}/presence`, '{"state":"away"}', { qos: 0 })
  await closed
  t.pass('closed')
})

t.test('a flood of bad payloads: error events are bounded per connection', async (t) => {
  const [alice] = await newUsers(node, 'alice')
  const phone = await connectUser(t, node, alice, 'phone')
  await phone.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  let errors = 0
  phone.on('message', (topic) => { if (topic === `user/${alice}/inbox`) errors++ })
  for (let i = 0; i < 200; i++) phone.publish(`user/${alice}/presence`, 'nope', { qos: 0 })
  // a QoS 1 publish behind them: its PUBACK comes after the 200 were handled
  await say(phone, alice, 'active')
  await phone.publishAsync(`user/${alice}/presence`, '{"state":"active"}', { qos: 1 })
  await suback(phone, `user/${alice}/inbox`) // and every error event before it is in
  t.ok(errors >= ERROR_BURST && errors <= ERROR_BURST + 2, `${errors} error events for 200 bad payloads (burst ${ERROR_BURST}, then one a second)`)
  t.ok(phone.connected)
})

t.test(`presence subscriptions per connection are capped at ${MAX_PRESENCE_SUBSCRIPTIONS}`, async (t) => {
  const viewer = userId('hoarder')
  const subjects = Array.from({ length: MAX_PRESENCE_SUBSCRIPTIONS + 1 }, (_, i) => `${viewer}-s${i}`)
  await ensureUsers(node.store, [viewer, ...subjects])
  const c = await connectUser(t, node, viewer, 'phone')
  const codes: number[] = []
  for (let i = 0; i < subjects.length; i += 100) codes.push(...await suback(c, subjects.slice(i, i + 100).map(s => `presence/${s}`), 0))
  t.equal(codes.filter(x => x === 0).length, MAX_PRESENCE_SUBSCRIPTIONS)
  t.equal(codes.at(-1), 128, 'the one over the cap is refused')
  t.same(await suback(c, `presence/${viewer}`, 0), [0], 'one\'s own presence does not count')
  await c.unsubscribeAsync(`presence/${subjects[0] as string}`)
  t.same(await suback(c, `presence/${subjects.at(-1) as string}`, 0), [0], 'after an UNSUBSCRIBE there is room again')
  t.equal(statsOf(node).grants >= MAX_PRESENCE_SUBSCRIPTIONS, true)
  await c.endAsync()
  t.equal(statsOf(node).grants, 0, 'a connection\'s grants go with it')
})

t.test('GET /v1/presence: bad user_ids answer 400 bad_request', async (t) => {
  const [me] = await newUsers(node, 'me')
  const tooMany = Array.from({ length: MAX_PRESENCE_USERS + 1 }, (_, i) => `u${i}`).join(',')
  const cases: Array<[string, string]> = [
    ['no user_ids', '/v1/presence'],
    ['an empty list', '/v1/presence?user_ids='],
    ['an empty id', '/v1/presence?user_ids=a,,b'],
    ['a trailing comma', '/v1/presence?user_ids=a,'],
    ['a space', '/v1/presence?user_ids=a%20b'],
    ['a character ids never have', '/v1/presence?user_ids=a/b'],
    ['an id of 65 characters', `/v1/presence?user_ids=${'x'.repeat(65)}`],
    [`${MAX_PRESENCE_USERS + 1} ids`, `/v1/presence?user_ids=${tooMany}`],
    ['the parameter twice', '/v1/presence?user_ids=a&user_ids=b']
  ]
  for (const [what, url] of cases) {
    const res = await call(me, 'GET', url)
    t.equal(res.statusCode, 400, what)
    t.match(res.json(), { code: 'bad_request', message: /user_ids/ }, what)
  }
  const exactly = Array.from({ length: MAX_PRESENCE_USERS }, (_, i) => `u${i}`)
  t.equal((await presenceOf(node, me, exactly)).length, MAX_PRESENCE_USERS, `${MAX_PRESENCE_USERS} ids are fine`)
  t.equal((await call(null, 'GET', '/v1/presence?user_ids=a')).statusCode, 401, 'a token is needed')
})

t.test('PATCH /v1/me/settings: validated; a bad body changes nothing; GET /v1/me shows the settings', async (t) => {
  const [me] = await newUsers(node, 'me')
  const cases: Array<[string, unknown, number]> = [
    ['an empty object', {}, 400],
    ['an unknown value', { presence_visibility: 'friends' }, 400],
    ['null', { presence_visibility: null }, 400],
    ['an unknown setting', { presence_visibility: 'nobody', theme: 'dark' }, 400],
    ['an array', [{ presence_visibility: 'nobody' }], 400],
    ['not JSON', '{"presence_visibility":', 400]
  ]
  for (const [what, body, status] of cases) {
    const res = await call(me, 'PATCH', '/v1/me/settings', typeof body === 'string' ? body : JSON.stringify(body), { 'content-type': 'application/json' })
    t.equal(res.statusCode, status, what)
    t.match(res.json(), { code: 'bad_request' }, what)
  }
  const text = await call(me, 'PATCH', '/v1/me/settings', 'presence_visibility=nobody', { 'content-type': 'text/plain' })
  t.equal(text.statusCode, 415, 'not JSON at all')
  t.same((await call(me, 'GET', '/v1/me')).json(), { user_id: me, display_name: me, settings: { presence_visibility: 'everyone' } }, 'nothing changed')

  const ok = await call(me, 'PATCH', '/v1/me/settings', JSON.stringify({ presence_visibility: 'contacts' }), { 'content-type': 'application/json' })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { presence_visibility: 'contacts' }, 'answers the settings')
  t.same((await call(me, 'GET', '/v1/me')).json(), { user_id: me, display_name: me, settings: { presence_visibility: 'contacts' } })
  t.equal((await call(null, 'PATCH', '/v1/me/settings', JSON.stringify({ presence_visibility: 'nobody' }), { 'content-type': 'application/json' })).statusCode, 401)
})
