import t from 'tap'
import mqtt from 'mqtt'
import { connectUser, token } from '../helpers/node.js'
import { waitFor, withTimeout } from '../helpers/wait.js'
import { connackOf, startLoggedNode } from './helpers.js'

t.test('THREADLINE_MAX_CONNECTIONS counts TCP and WebSocket together: the next CONNECT gets CONNACK 3, the others go on, a freed place is taken again', async (t) => {
  const { node, lines } = await startLoggedNode(t, { THREADLINE_MAX_CONNECTIONS: '3' })
  const refused: string[] = []
  node.telemetry.on('connectionRefused', (e) => refused.push(e.reason))

  const alice = await connectUser(t, node, 'alice', 'phone')
  const bob = await connectUser(t, node, 'bob', 'web', { ws: true })
  const carol = await connectUser(t, node, 'carol', 'phone')
  t.equal(node.connections.mqtt, 3)

  // over TCP: CONNACK 3 (server unavailable), then the server closes the connection
  const tcp = await connackOf(t, node.mqttPort, { clientId: 'dave:phone', clean: true, username: 'dave', password: token(node, 'dave') })
  t.equal(tcp.returnCode, 3, 'CONNACK 3 over TCP')
  await withTimeout(tcp.closed, 'the refused TCP connection to close')

  // over WebSocket: the same answer
  const ws = mqtt.connectAsync(`ws://127.0.0.1:${node.httpPort}/mqtt`, { clientId: 'erin:web', username: 'erin', password: token(node, 'erin'), protocolVersion: 4, reconnectPeriod: 0 })
  await t.rejects(ws, { code: 3 }, 'CONNACK 3 over WebSocket')

  t.same(refused, ['max_connections', 'max_connections'])
  const logged = lines.filter(l => l.msg === 'connection refused')
  t.equal(logged.length, 2, 'one info line per refusal')
  t.match(logged[0], { level: 30, reason: 'max_connections', clientId: 'dave:phone', address: '127.0.0.1', returnCode: 3, max: 3 })
  t.notOk(JSON.stringify(logged).includes(token(node, 'dave').slice(0, 20)), 'no token in the log')

  // the three admitted clients never noticed
  for (const [client, user] of [[alice, 'alice'], [bob, 'bob'], [carol, 'carol']] as const) {
    t.ok(client.connected, `${user} is still connected`)
    const granted = await client.subscribeAsync(`user/${user}/inbox`, { qos: 1 })
    t.equal(granted[0]?.qos, 1, `${user} still subscribes`)
  }

  // a place freed is usable again
  await carol.endAsync()
  await waitFor(() => node.connections.mqtt === 2, 'carol\'s place to be freed')
  const dave = await connectUser(t, node, 'dave', 'phone', { ws: true })
  t.ok(dave.connected, 'dave takes the freed place')
  t.equal(node.connections.mqtt, 3)
})

t.test('a refused CONNECT costs no store query: the cap is checked before the plugins', async (t) => {
  const { node } = await startLoggedNode(t, { THREADLINE_MAX_CONNECTIONS: '1' })
  await connectUser(t, node, 'alice', 'phone')
  const store = node.store as { query: (...args: unknown[]) => unknown }
  const query = store.query
  let queries = 0
  store.query = (...args: unknown[]) => { queries++; return query.apply(node.store, args) }
  t.teardown(() => { store.query = query })
  for (let i = 0; i < 20; i++) {
    const { returnCode } = await connackOf(t, node.mqttPort, { clientId: `u${i}:phone`, clean: true, username: `u${i}`, password: token(node, `u${i}`) })
    t.equal(returnCode, 3)
  }
  t.equal(queries, 0, 'twenty refusals, no query')
})

t.test('connections that failed authentication give their place back', async (t) => {
  const { node } = await startLoggedNode(t, { THREADLINE_MAX_CONNECTIONS: '1' })
  for (let i = 0; i < 5; i++) {
    const bad = await connackOf(t, node.mqttPort, { clientId: 'mallory:phone', clean: true, username: 'mallory', password: 'not a token' })
    t.equal(bad.returnCode, 4)
    await withTimeout(bad.closed, 'the refused connection to close')
  }
  await waitFor(() => node.connections.mqtt === 0, 'no place held')
  const alice = await connectUser(t, node, 'alice', 'phone')
  t.ok(alice.connected)
})
