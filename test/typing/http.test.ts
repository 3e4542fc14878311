// POST /v1/conversations/:id/typing: the typing plugin's own route, on a real node (the
// sidecar mounts plugin routes), observed by a real MQTT subscriber.
import type { MqttClient } from 'mqtt'
import t, { type Test } from 'tap'
import type { Threadline } from '../../broker/server.js'
import { dbFingerprint } from '../helpers/db-fingerprint.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { collect, connectUser, startNode, token, type StoreKind } from '../helpers/node.js'

interface Setup { node: Threadline, alice: string, bob: string, conv: string, b: MqttClient }

async function setup (t: Test, store: StoreKind = 'pg', env: Record<string, string> = {}): Promise<Setup> {
  const node = await startNode(t, { store, env })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob], 'group')
  const b = await connectUser(t, node, bob, 'phone')
  await b.subscribeAsync(`conv/${conv}/typing`, { qos: 0 })
  return { node, alice, bob, conv, b }
}

const post = (node: Threadline, user: string, convId: string, body: unknown) =>
  node.app.inject({
    method: 'POST',
    url: `/v1/conversations/${convId}/typing`,
    headers: { authorization: `Bearer ${token(node, user)}`, 'content-type': 'application/json' },
    payload: typeof body === 'string' ? body : JSON.stringify(body)
  })

for (const store of ['pg', 'pglite'] as const) {
  t.test(`${store}: 204, the members' subscribers get the signal stamped with the caller, and nothing is stored`, async (t) => {
    const s = await setup(t, store)
    // the caller's first request upserts their user row, as every authenticated request does
    await s.node.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token(s.node, s.alice)}` } })
    const before = await dbFingerprint(s.node.store)
    const got = collect(s.b, 1, (topic) => topic === `conv/${s.conv}/typing`)
    const res = await post(s.node, s.alice, s.conv.toUpperCase(), { typing: true, user_id: 'mallory' })
    t.equal(res.statusCode, 204, res.body)
    t.equal(res.body, '')
    t.same(await got, [{ user_id: s.alice, typing: true }], 'a forged user_id is ignored; the topic is the canonical id')
    t.same(await dbFingerprint(s.node.store), before, 'no row of any table was written')
  })
}

t.test('throttled like MQTT, and by the same rule: a start within the interval is accepted (204) and not forwarded', async (t) => {
  const s = await setup(t, 'pg', { THREADLINE_TYPING_INTERVAL_MS: '60000' })
  const a = await connectUser(t, s.node, s.alice, 'phone')
  const got = collect<{ typing: boolean }>(s.b, 2, (topic) => topic === `conv/${s.conv}/typing`)
  await a.publishAsync(`conv/${s.conv}/typing`, '{"typing":true}', { qos: 1 }) // PUBACKed once handled
  for (const typing of [true, true, false, false]) t.equal((await post(s.node, s.alice, s.conv, { typing })).statusCode, 204)
  t.same((await got).map(m => m.typing), [true, false], 'the start over MQTT, then only the first stop over HTTP')
})

t.test('bad input: 403 not_member, 400 bad_request, 401; nothing forwarded', async (t) => {
  const s = await setup(t)
  const seen: string[] = []
  s.b.on('message', (_topic, payload) => { seen.push(payload.toString()) })
  const cases: Array<[string, string, unknown, number, string]> = [
    [userId('carol'), s.conv, { typing: true }, 403, 'not_member'],
    [s.alice, '00000000-0000-4000-8000-000000000000', { typing: true }, 403, 'not_member'],
    [s.alice, 'not-a-uuid', { typing: true }, 400, 'bad_request'],
    [s.alice, s.conv, {}, 400, 'bad_request'],
    [s.alice, s.conv, { typing: 'yes' }, 400, 'bad_request'],
    [s.alice, s.conv, [true], 400, 'bad_request'],
    [s.alice, s.conv, '{"typing":', 400, 'bad_request']
  ]
  for (const [user, conv, body, status, code] of cases) {
    const res = await post(s.node, user, conv, body)
    t.equal(res.statusCode, status, `${JSON.stringify(body)} to ${conv.slice(0, 8)} → ${status}`)
    t.equal(res.json().code, code)
  }
  t.match((await post(s.node, s.alice, s.conv, { typing: 'x' })).json().message, /body\.typing/, 'the message names the field')
  const anonymous = await s.node.app.inject({ method: 'POST', url: `/v1/conversations/${s.conv}/typing`, payload: { typing: true } })
  t.equal(anonymous.statusCode, 401)

  // the one good signal arrives; had anything before it been forwarded, it would have come first
  const good = collect(s.b, 1, () => true)
  t.equal((await post(s.node, s.alice, s.conv, { typing: true })).statusCode, 204)
  await good
  t.same(seen.map(p => JSON.parse(p)), [{ user_id: s.alice, typing: true }])
})
