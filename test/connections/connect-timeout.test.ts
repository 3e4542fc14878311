import { once } from 'node:events'
import t from 'tap'
import WebSocket from 'ws'
import { connectUser } from '../helpers/node.js'
import { openSocket } from '../helpers/raw-mqtt.js'
import { waitFor, withTimeout } from '../helpers/wait.js'
import { startLoggedNode } from './helpers.js'

t.test('a connection that sends no CONNECT within THREADLINE_CONNECT_TIMEOUT_MS is closed, over TCP and WebSocket', async (t) => {
  const { node } = await startLoggedNode(t, { THREADLINE_CONNECT_TIMEOUT_MS: '300' })
  const refused: string[] = []
  node.telemetry.on('connectionRefused', (e) => refused.push(e.reason))

  const started = Date.now()
  const socket = await openSocket(node.mqttPort)
  t.teardown(() => socket.destroy())
  const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/mqtt`, 'mqtt')
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  await withTimeout(Promise.all([once(socket, 'close'), once(ws, 'close')]), 'both silent connections to be closed', 5000)
  const ms = Date.now() - started
  t.ok(ms >= 250, `closed after ${ms} ms, not before the timeout`)
  // Aedes' message for its connect timer (lib/client.js) is what counts the refusal
  t.same(refused, ['connect_timeout', 'connect_timeout'], 'both counted (an Aedes upgrade that renames the error fails here)')
  await waitFor(() => node.connections.sockets === 0, 'the sockets to be given back')

  // a client that sends its CONNECT in time is not affected, and stays past the timeout
  const alice = await connectUser(t, node, 'alice', 'phone')
  // nothing announces that a timer did not fire: wait past it
  await new Promise(resolve => setTimeout(resolve, 600))
  t.ok(alice.connected, 'a connected client outlives the CONNECT timeout')
})
