// The plugin interface end to end (broker/plugin.ts): a plugin made for the suite
// (test/fixtures/plugins/witness) joins a real node with one line in its plugin list and
// brings a publish hook, lifecycle listeners, a REST route, its own config and a typed
// service. Real nodes, real PostgreSQL, real MQTT.js clients over loopback.
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../broker/config.js'
import { definePlugin } from '../../broker/plugin.js'
import { PLUGINS } from '../../broker/plugins.js'
import type { Threadline } from '../../broker/server.js'
import { startThreadline } from '../../broker/server.js'
import { createLogger } from '../../broker/logger.js'
import { WITNESS_SERVICE, witnessPlugin, type Witness } from '../fixtures/plugins/witness/index.js'
import { closed, sendText } from '../helpers/access.js'
import { connectUser, startNode, testConfig, token } from '../helpers/node.js'
import { connectPacket, openSocket, readBytes } from '../helpers/raw-mqtt.js'
import { startCluster } from '../helpers/cluster.js'
import { withTimeout } from '../helpers/wait.js'

/** the node's plugins and the witness: the one registration line */
const plugins = [...PLUGINS, witnessPlugin]

async function witnessedNode (t: Test, env: Record<string, string> = {}): Promise<{ node: Threadline, witness: Witness }> {
  const node = await startNode(t, { plugins, env: { THREADLINE_OPEN_TOPICS: 'authenticated', ...env } })
  return { node, witness: node.services.get(WITNESS_SERVICE) }
}

const goneOf = (witness: Witness, clientId: string): string | undefined =>
  witness.lifecycle.find(e => e.event === 'gone' && e.clientId === clientId)?.reason

async function createGroup (t: Test, node: Threadline, creator: string, members: string[]): Promise<string> {
  const res = await node.app.inject({
    method: 'POST',
    url: '/v1/conversations',
    headers: { authorization: `Bearer ${token(node, creator)}` },
    payload: { type: 'group', title: 'plugins', members }
  })
  t.equal(res.statusCode, 201, res.body)
  return (res.json() as { id: string }).id
}

t.test('config: a plugin parses its own variables, and a bad value names its variable', async (t) => {
  t.equal(loadConfig({ THREADLINE_WITNESS_MAX_NOTE: '8' }, plugins).plugins.witness !== undefined, true)
  t.same(loadConfig({ THREADLINE_WITNESS_MAX_NOTE: '8' }, plugins).plugins.witness, { maxNote: 8 })
  t.throws(() => loadConfig({ THREADLINE_WITNESS_MAX_NOTE: 'lots' }, plugins), new ConfigError('THREADLINE_WITNESS_MAX_NOTE', 'expected a whole number, got "lots"'))
  t.throws(() => loadConfig({ THREADLINE_WITNESS_MAX_NOTE: '0' }, plugins), /THREADLINE_WITNESS_MAX_NOTE: must be between 1 and 1000/)
  // the node's own list does not read the witness' variables
  t.equal(loadConfig({ THREADLINE_WITNESS_MAX_NOTE: 'lots' }).plugins.witness, undefined)
})

t.test('a node refuses to start a plugin whose config was not loaded', async (t) => {
  const config = await testConfig(t, { store: 'pglite' }) // loaded for the node's own plugins only
  await t.rejects(startThreadline(config, createLogger('silent'), { plugins }), /plugin witness has configuration that was not loaded/)
})

t.test('service, route, hook and config of one plugin folder', async (t) => {
  const { node, witness } = await witnessedNode(t, { THREADLINE_WITNESS_MAX_NOTE: '10' })
  t.ok(witness.notes, 'the typed service is there under its key')

  const alice = await connectUser(t, node, 'alice', 'phone')
  await alice.publishAsync('witness/note', 'hello', { qos: 1 })
  const res = await node.app.inject({ method: 'GET', url: '/v1/witness/notes', headers: { authorization: `Bearer ${token(node, 'alice')}` } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { max_note: 10, notes: ['hello'] }, 'the route is mounted under /v1, sees the caller and the plugin\'s options')
  const bob = await node.app.inject({ method: 'GET', url: '/v1/witness/notes', headers: { authorization: `Bearer ${token(node, 'bob')}` } })
  t.same(bob.json(), { max_note: 10, notes: [] }, 'request.identity is the caller')
  const anonymous = await node.app.inject({ method: 'GET', url: '/v1/witness/notes' })
  t.equal(anonymous.statusCode, 401, 'plugin routes sit behind the bearer-token check')

  // a hook that throws closes that connection only ([MQTT-3.3.5-2])
  alice.publish('witness/note', 'far too long for it', { qos: 1 })
  await closed(alice)
  const carol = await connectUser(t, node, 'carol', 'phone')
  await carol.publishAsync('witness/note', 'still up', { qos: 1 })
  t.same(witness.notes.map(n => n.note), ['hello', 'still up'])
})

t.test('eventsCommitted: once per batch, after the commit, new events only, MQTT and HTTP alike', async (t) => {
  const { node, witness } = await witnessedNode(t)
  const convId = await createGroup(t, node, 'alice', ['bob'])
  const alice = await connectUser(t, node, 'alice', 'phone')
  await sendText(alice, convId, 'm1')
  await witness.until(() => witness.committed.length === 1)
  const [batch] = witness.committed
  t.equal(batch?.length, 1)
  t.match(batch?.[0]?.envelope, { t: 'event', conv_id: convId, seq: 1, sender_id: 'alice', client_msg_id: 'm1', type: 'text' })
  t.same([...(batch?.[0]?.members ?? [])].sort(), ['alice', 'bob'], 'with the members at commit time')

  // a retry of a stored send is no new event; the next send is
  await sendText(alice, convId, 'm1')
  const http = await node.app.inject({
    method: 'POST',
    url: `/v1/conversations/${convId}/messages`,
    headers: { authorization: `Bearer ${token(node, 'bob')}` },
    payload: { client_msg_id: 'h1', type: 'text', text: 'over http' }
  })
  t.equal(http.statusCode, 201, http.body)
  await witness.until(() => witness.committed.length === 2)
  t.same(witness.committed.flat().map(e => [e.envelope.seq, e.envelope.client_msg_id]), [[1, 'm1'], [2, 'h1']])
})

t.test('membershipChanged: on every change, with who was added or removed', async (t) => {
  const { node, witness } = await witnessedNode(t)
  const convId = await createGroup(t, node, 'alice', ['bob'])
  const removed = await node.app.inject({ method: 'DELETE', url: `/v1/conversations/${convId}/members/bob`, headers: { authorization: `Bearer ${token(node, 'alice')}` } })
  t.equal(removed.statusCode, 204, removed.body)
  await witness.until(() => witness.membership.length === 2)
  t.match(witness.membership[0], { conv_id: convId, removed: [] })
  t.same([...(witness.membership[0]?.added ?? [])].sort(), ['alice', 'bob'])
  t.match(witness.membership[1], { conv_id: convId, added: [], removed: ['bob'] })
})

t.test('a lifecycle listener that throws or never settles costs nobody anything', async (t) => {
  const trouble = definePlugin({
    name: 'trouble',
    hooks: () => ({
      clientReady: () => { throw new Error('ready listener broke') },
      clientGone: () => Promise.reject(new Error('gone listener broke')),
      eventsCommitted: () => new Promise<void>(() => {}),
      membershipChanged: () => { throw new Error('membership listener broke') }
    })
  })
  const node = await startNode(t, { plugins: [...PLUGINS, trouble] })
  const convId = await createGroup(t, node, 'alice', ['bob'])
  const alice = await connectUser(t, node, 'alice', 'phone')
  for (const id of ['a', 'b', 'c']) await withTimeout(sendText(alice, convId, id), `the PUBACK of ${id}`)
  await alice.endAsync()
  const again = await connectUser(t, node, 'alice', 'phone')
  await withTimeout(sendText(again, convId, 'd'), 'a send after reconnecting')
  const rows = await node.store.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE conv_id = $1', [convId])
  t.equal(rows[0]?.n, 4, 'every send stored')
})

t.test('clientReady and clientGone, with the reason', async (t) => {
  const { node, witness } = await witnessedNode(t)
  const ready = (clientId: string): Promise<void> => witness.until(() => witness.lifecycle.some(e => e.event === 'ready' && e.clientId === clientId))
  const gone = (clientId: string): Promise<string | undefined> => witness.until(() => goneOf(witness, clientId) !== undefined).then(() => goneOf(witness, clientId))

  t.test('disconnect: the client sent DISCONNECT', async (t) => {
    const c = await connectUser(t, node, 'dana', 'phone')
    await ready('dana:phone')
    await c.endAsync()
    t.equal(await gone('dana:phone'), 'disconnect')
  })

  t.test('error: the connection broke without DISCONNECT', async (t) => {
    const c = await connectUser(t, node, 'dana', 'laptop')
    await ready('dana:laptop')
    c.stream.destroy()
    t.equal(await gone('dana:laptop'), 'error')
  })

  t.test('takeover: a newer connection with the same clientId', async (t) => {
    await connectUser(t, node, 'dana', 'tablet')
    await ready('dana:tablet')
    await connectUser(t, node, 'dana', 'tablet')
    t.equal(await gone('dana:tablet'), 'takeover')
    t.equal(witness.lifecycle.filter(e => e.clientId === 'dana:tablet' && e.event === 'ready').length, 2)
  })

  t.test('keepalive: nothing arrived within 1.5 × the keepalive', async (t) => {
    const socket = await openSocket(node.mqttPort)
    t.teardown(() => socket.destroy())
    socket.write(connectPacket({ clientId: 'dana:watch', clean: true, username: 'dana', password: token(node, 'dana'), keepaliveS: 1 }))
    t.same([...await readBytes(socket, 4)], [0x20, 2, 0, 0], 'CONNACK 0')
    t.equal(await gone('dana:watch'), 'keepalive')
  })

  t.test('token_expired: the token ran out while connected', async (t) => {
    const socket = await openSocket(node.mqttPort)
    t.teardown(() => socket.destroy())
    socket.write(connectPacket({ clientId: 'dana:kiosk', clean: true, username: 'dana', password: token(node, 'dana', { ttlS: 1 }) }))
    t.same([...await readBytes(socket, 4)], [0x20, 2, 0, 0], 'CONNACK 0')
    t.equal(await gone('dana:kiosk'), 'token_expired')
  })

  t.test('gone comes once per ready, never for a refused CONNECT', async (t) => {
    const socket = await openSocket(node.mqttPort)
    t.teardown(() => socket.destroy())
    socket.write(connectPacket({ clientId: 'dana:forged', clean: true, username: 'dana', password: 'not a token' }))
    t.same([...await readBytes(socket, 4)], [0x20, 2, 0, 4], 'CONNACK 4')
    const readies = witness.lifecycle.filter(e => e.event === 'ready').length
    const gones = witness.lifecycle.filter(e => e.event === 'gone').length
    t.ok(witness.lifecycle.every(e => e.clientId !== 'dana:forged'), 'nothing told about the refused client')
    t.ok(gones <= readies)
  })
})

t.test('shutdown: the node closing says so', async (t) => {
  const { node, witness } = await witnessedNode(t)
  await connectUser(t, node, 'erin', 'phone')
  await witness.until(() => witness.lifecycle.some(e => e.event === 'ready' && e.clientId === 'erin:phone'))
  await node.close()
  t.equal(goneOf(witness, 'erin:phone'), 'shutdown')
})

t.test('takeover across nodes of a cluster', async (t) => {
  const { nodes } = await startCluster(t, 2, {}, plugins)
  const [a, b] = nodes as [Threadline, Threadline]
  const witness = a.services.get(WITNESS_SERVICE)
  await connectUser(t, a, 'fay', 'phone')
  await witness.until(() => witness.lifecycle.some(e => e.event === 'ready' && e.clientId === 'fay:phone'))
  await connectUser(t, b, 'fay', 'phone')
  await witness.until(() => goneOf(witness, 'fay:phone') !== undefined)
  t.equal(goneOf(witness, 'fay:phone'), 'takeover')
})
