// CONNECT with a JWT (DESIGN.md §2): username = sub, password = token,
// clientId = <sub>:<deviceId>; anything else is CONNACK 4 or 5 and no session.
import t from 'tap'
import { createSigner } from 'fast-jwt'
import mqtt from 'mqtt'
import { startNode, connectUser, token, TEST_SECRET } from '../helpers/node.js'
import { closed, connackRefusal, connectRaw, suback, tcpUrl, wsUrl } from '../helpers/access.js'

const node = await startNode(t)
const url = tcpUrl(node)
const nowS = (): number => Math.floor(Date.now() / 1000)

/** Aedes keeps its connected clients by id; its typings leave the map out. */
const connectedIds = (): string[] => Object.keys((node.broker as unknown as { clients: Record<string, unknown> }).clients)

t.test('a valid token connects over TCP', async (t) => {
  const client = await connectUser(t, node, 'alice', 'phone')
  t.ok(client.connected)
  t.same(await suback(client, 'user/alice/inbox'), [1], 'and the session works: own inbox granted')
})

t.test('a valid token connects over WebSocket at /mqtt', async (t) => {
  const client = await connectUser(t, node, 'alice', 'web', { ws: true })
  t.ok(client.connected)
  t.same(await suback(client, 'user/alice/inbox'), [1])
  t.ok(connectedIds().includes('alice:web'))
})

t.test('a bad token over WebSocket is refused the same way', async (t) => {
  const forged = createSigner({ key: 'not-the-secret-0123456789abcdef', expiresIn: 3_600_000 })({ sub: 'alice' })
  const code = await connackRefusal(t, wsUrl(node), { clientId: 'alice:web', username: 'alice', password: forged })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
})

t.test('the first connect creates the user row, named by the token', async (t) => {
  await connectRaw(t, url, { clientId: 'carol:phone', username: 'carol', password: token(node, 'carol', { name: 'Carol Danvers' }) })
  const rows = await node.store.query<{ display_name: string }>('SELECT display_name FROM users WHERE id = $1', ['carol'])
  t.same(rows, [{ display_name: 'Carol Danvers' }])
})

t.test('a token without a name creates the user row named by the id', async (t) => {
  await connectUser(t, node, 'dave', 'phone')
  const rows = await node.store.query<{ display_name: string }>('SELECT display_name FROM users WHERE id = $1', ['dave'])
  t.same(rows, [{ display_name: 'dave' }])
})

t.test('an expired token is refused at CONNECT and leaves no session', async (t) => {
  const expired = createSigner({ key: TEST_SECRET })({ sub: 'erin', exp: nowS() - 60 })
  const code = await connackRefusal(t, url, { clientId: 'erin:phone', username: 'erin', password: expired, clean: false })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
  t.notOk(connectedIds().includes('erin:phone'), 'no client registered')
  const subs = await (node.broker as unknown as { persistence: { subscriptionsByClient(c: { id: string }): Promise<unknown[]> } })
    .persistence.subscriptionsByClient({ id: 'erin:phone' })
  t.same(subs, [], 'no stored session')
  const rows = await node.store.query('SELECT 1 FROM users WHERE id = $1', ['erin'])
  t.equal(rows.length, 0, 'no user row for a refused token')
})

t.test('a token signed with another secret is refused', async (t) => {
  const forged = createSigner({ key: 'not-the-secret-0123456789abcdef', expiresIn: 3_600_000 })({ sub: 'alice' })
  const code = await connackRefusal(t, url, { clientId: 'alice:phone', username: 'alice', password: forged })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
})

t.test('a tampered token (payload changed, signature kept) is refused', async (t) => {
  const [header, , signature] = token(node, 'mallory').split('.')
  const payload = Buffer.from(JSON.stringify({ sub: 'mallory', role: 'admin', exp: nowS() + 3600 })).toString('base64url')
  const code = await connackRefusal(t, url, { clientId: 'mallory:phone', username: 'mallory', password: `${header}.${payload}.${signature}` })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
})

t.test('an unsigned token (alg none) is refused', async (t) => {
  const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', exp: nowS() + 3600 })}.`
  const code = await connackRefusal(t, url, { clientId: 'alice:phone', username: 'alice', password: unsigned })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
})

t.test('a token with a role outside user|integrator|admin is refused', async (t) => {
  const godly = createSigner({ key: TEST_SECRET, expiresIn: 3_600_000 })({ sub: 'alice', role: 'god' })
  const code = await connackRefusal(t, url, { clientId: 'alice:phone', username: 'alice', password: godly })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
})

t.test('a username other than the token\'s sub is refused', async (t) => {
  const code = await connackRefusal(t, url, { clientId: 'alice:phone', username: 'bob', password: token(node, 'alice') })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
})

t.test('a username without a password is refused', async (t) => {
  const code = await connackRefusal(t, url, { clientId: 'alice:phone', username: 'alice' })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
})

t.test('a clientId that is not <sub>:<deviceId> is refused', async (t) => {
  for (const clientId of ['alice', 'alice:', 'alice:a:b', 'alice:dev/ice', 'alice:' + 'x'.repeat(65), ':phone']) {
    const code = await connackRefusal(t, url, { clientId, username: 'alice', password: token(node, 'alice') })
    t.ok(code === 4 || code === 5, `${JSON.stringify(clientId)}: CONNACK ${code}`)
  }
})

t.test('the broker closes the connection after the refusing CONNACK', async (t) => {
  // [MQTT-3.2.2-5]
  const client = mqtt.connect(url, {
    protocolVersion: 4, reconnectPeriod: 0, clientId: 'alice', username: 'alice', password: token(node, 'alice')
  })
  t.teardown(() => client.endAsync(true))
  client.on('error', () => {})
  await closed(client)
  t.notOk(client.connected, 'closed by the broker')
})
