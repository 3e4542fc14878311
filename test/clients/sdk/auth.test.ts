// Tokens: when the server refuses the client's token (an expired one: CONNACK 4 over MQTT,
// 401 over HTTP), the client asks the app for a fresh one through refreshToken() and goes
// on; a token refused again, or with nobody to ask, is a final answer.
import t from 'tap'
import { createConversation, userId } from '../../helpers/fixtures.js'
import { startNode, token } from '../../helpers/node.js'
import { nextEvent, onlineClient, sdkClient, state } from '../../helpers/sdk.js'
import { withTimeout } from '../../helpers/wait.js'

/** A token with the right `sub` and a signature the server refuses. */
const forged = (valid: string): string => valid.slice(0, -6) + (valid.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA')

t.test('a token that expires while connected: the server closes, refreshToken() is asked once, and the client is back', async (t) => {
  const node = await startNode(t)
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  let asked = 0
  const a = await onlineClient(t, node, alice, {
    token: token(node, alice, { ttlS: 2 }),
    refreshToken: async () => { asked++; return token(node, alice) }
  })
  t.equal(a.transport, 'mqtt')
  await state(a, 'offline', undefined, 10_000)
  await state(a, 'online', 'mqtt', 10_000)
  t.equal(asked, 1, 'asked for one fresh token')
  const entry = a.send(conv, 'still here')
  await nextEvent(a, 'outbox', e => e.temp_id === entry.temp_id && e.status === 'sent')
  t.pass('and it sends with it')
})

for (const transport of ['mqtt', 'longpoll'] as const) {
  t.test(`over ${transport}: a refused token is replaced through refreshToken() before connect() resolves`, async (t) => {
    const node = await startNode(t)
    const alice = userId('alice')
    let asked = 0
    const a = sdkClient(t, node, alice, {
      transport,
      token: forged(token(node, alice)),
      refreshToken: async () => { asked++; return token(node, alice) }
    })
    await withTimeout(a.connect(), 'connect')
    t.equal(asked, 1, 'asked once')
    t.equal(a.transport, transport)
    t.same(await a.conversations(), [], 'HTTP calls carry the new token')
  })
}

t.test('an HTTP call answered 401 asks for a fresh token and is repeated with it', async (t) => {
  const node = await startNode(t)
  const [alice, bob] = [userId('alice'), userId('bob')]
  let asked = 0
  const a = sdkClient(t, node, alice, { token: forged(token(node, alice)), refreshToken: async () => { asked++; return token(node, alice) } })
  const conv = await a.createConversation({ type: 'direct', members: [bob] })
  t.equal(asked, 1, 'asked once')
  t.match(conv, { type: 'direct' }, 'the call went through')
})

for (const transport of ['mqtt', 'longpoll'] as const) {
  t.test(`over ${transport}, a refused token with no refreshToken(), or refused again after it, makes connect() reject`, async (t) => {
    const node = await startNode(t)
    const alice = userId('alice')
    const refusal = { name: 'AuthRefused', code: transport === 'mqtt' ? 4 : 401 }
    const plain = sdkClient(t, node, alice, { transport, token: forged(token(node, alice)) })
    const errors: unknown[] = []
    plain.on('error', err => errors.push(err))
    await t.rejects(withTimeout(plain.connect(), 'connect'), refusal, 'no refreshToken(): the refusal is final')
    t.equal(plain.state, 'offline')
    t.equal(errors.length, 1, "and reported on 'error'")

    let asked = 0
    const stubborn = sdkClient(t, node, alice, { transport, deviceId: 'other', token: forged(token(node, alice)), refreshToken: async () => { asked++; return forged(token(node, alice)) } })
    await t.rejects(withTimeout(stubborn.connect(), 'connect'), refusal, 'a fresh token refused too: final')
    t.equal(asked, 1, 'after asking once')
  })
}
