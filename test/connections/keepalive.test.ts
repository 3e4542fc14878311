import t from 'tap'
import mqtt from 'mqtt'
import { connectUser, token } from '../helpers/node.js'
import { withTimeout } from '../helpers/wait.js'
import { connackOf, startLoggedNode } from './helpers.js'

t.test('keepalives up to THREADLINE_KEEPALIVE_MAX_S (an hour) are accepted; 0 and longer ones get CONNACK 2 and a close', async (t) => {
  const { node, lines } = await startLoggedNode(t, {})
  const refused: string[] = []
  node.telemetry.on('connectionRefused', (e) => refused.push(e.reason))

  // a battery-minded phone: 20 minutes
  const phone = await connectUser(t, node, 'alice', 'phone', { keepalive: 1200 })
  const granted = await phone.subscribeAsync('user/alice/inbox', { qos: 1 })
  t.equal(granted[0]?.qos, 1, 'a 20-minute keepalive connects and works')
  const hour = await connackOf(t, node.mqttPort, { clientId: 'alice:tablet', clean: true, username: 'alice', password: token(node, 'alice'), keepaliveS: 3600 })
  t.equal(hour.returnCode, 0, 'the bound itself is accepted')

  for (const keepaliveS of [3601, 65535, 0]) {
    const r = await connackOf(t, node.mqttPort, { clientId: 'bob:phone', clean: true, username: 'bob', password: token(node, 'bob'), keepaliveS })
    t.equal(r.returnCode, 2, `keepalive ${keepaliveS}: CONNACK 2`)
    await withTimeout(r.closed, `the connection with keepalive ${keepaliveS} to close`)
  }
  // MQTT.js reports it as "Identifier rejected"
  await t.rejects(mqtt.connectAsync(`ws://127.0.0.1:${node.httpPort}/mqtt`, { clientId: 'bob:web', username: 'bob', password: token(node, 'bob'), keepalive: 0, protocolVersion: 4, reconnectPeriod: 0 }), { code: 2 })

  t.same(refused, ['keepalive', 'keepalive', 'keepalive', 'keepalive'])
  t.match(lines.filter(l => l.msg === 'connection refused')[0], { level: 30, reason: 'keepalive', clientId: 'bob:phone', keepalive: 3601, keepaliveMax: 3600, returnCode: 2 })
  t.ok(phone.connected, 'the accepted phone is still connected')
})

t.test('THREADLINE_KEEPALIVE_MAX_S=0 lifts the bound: keepalive 0 and 65535 connect', async (t) => {
  const { node } = await startLoggedNode(t, { THREADLINE_KEEPALIVE_MAX_S: '0' })
  for (const keepaliveS of [0, 65535]) {
    const r = await connackOf(t, node.mqttPort, { clientId: `carol:d${keepaliveS}`, clean: true, username: 'carol', password: token(node, 'carol'), keepaliveS })
    t.equal(r.returnCode, 0, `keepalive ${keepaliveS}: CONNACK 0`)
  }
})

t.test('a lower bound is the operator\'s: 120 s refuses 121', async (t) => {
  const { node } = await startLoggedNode(t, { THREADLINE_KEEPALIVE_MAX_S: '120' })
  t.equal((await connackOf(t, node.mqttPort, { clientId: 'dan:a', clean: true, username: 'dan', password: token(node, 'dan'), keepaliveS: 120 })).returnCode, 0)
  t.equal((await connackOf(t, node.mqttPort, { clientId: 'dan:b', clean: true, username: 'dan', password: token(node, 'dan'), keepaliveS: 121 })).returnCode, 2)
})
