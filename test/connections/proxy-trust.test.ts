import { once } from 'node:events'
import t, { type Test } from 'tap'
import mqtt from 'mqtt'
import type { ThreadlinePlugin } from '../../broker/plugin.js'
import { PLUGINS } from '../../broker/plugins.js'
import { clientAddressOf } from '../../broker/client-address.js'
import { parseProxyHeader, ProxyHeaderError } from '../../broker/proxy-protocol.js'
import type { Threadline } from '../../broker/server.js'
import { token } from '../helpers/node.js'
import { connectPacket, openSocket, readBytes } from '../helpers/raw-mqtt.js'
import { waitFor, withTimeout } from '../helpers/wait.js'
import { startLoggedNode } from './helpers.js'

/** Sees the address every ready client is given, and what Fastify makes of a request. */
function witness (): { plugin: ThreadlinePlugin, seen: Map<string, string> } {
  const seen = new Map<string, string>()
  return {
    seen,
    plugin: {
      name: 'address-witness',
      hooks: () => ({ clientReady (client) { seen.set(client.id, clientAddressOf(client)) } }),
      http: () => async (app) => { app.get('/test/ip', async (request) => ({ ip: request.ip })) }
    }
  }
}

const V2_LOCAL = Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), Buffer.from([0x20, 0x00, 0, 0])])

function v2Header (command: 0 | 1, source: number[], family: 0x11 | 0x21): Buffer {
  const addresses = family === 0x11 ? Buffer.from([...source, 10, 0, 0, 1, 0x15, 0xb3, 0x07, 0x5b]) : Buffer.alloc(36)
  if (family === 0x21) {
    source.forEach((group, i) => addresses.writeUInt16BE(group, i * 2))
    addresses.writeUInt16BE(1, 30) // destination ::1
  }
  const head = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
  const length = Buffer.alloc(2)
  length.writeUInt16BE(addresses.length)
  return Buffer.concat([head, Buffer.from([0x20 | command, family]), length, addresses])
}

async function connectThrough (t: Test, node: Threadline, header: Buffer, user: string, device: string, opts: { split?: boolean } = {}): Promise<number> {
  const socket = await openSocket(node.mqttPort)
  t.teardown(() => socket.destroy())
  const bytes = Buffer.concat([header, connectPacket({ clientId: `${user}:${device}`, clean: true, username: user, password: token(node, user) })])
  if (opts.split === true) {
    // one byte per write: a header cut across TCP segments is still read whole
    for (const byte of bytes) {
      socket.write(Buffer.from([byte]))
      await new Promise(resolve => setImmediate(resolve))
    }
  } else {
    socket.write(bytes)
  }
  return (await withTimeout(readBytes(socket, 4), `CONNACK for ${user}:${device}`))[3] as number
}

async function ipOf (node: Threadline, headers: Record<string, string>): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}/test/ip`, { headers })
  return ((await res.json()) as { ip: string }).ip
}

async function wsAddress (t: Test, node: Threadline, seen: Map<string, string>, user: string, headers: Record<string, string>): Promise<string | undefined> {
  const client = await mqtt.connectAsync(`ws://127.0.0.1:${node.httpPort}/mqtt`, { clientId: `${user}:web`, username: user, password: token(node, user), protocolVersion: 4, reconnectPeriod: 0, wsOptions: { headers } })
  t.teardown(() => client.endAsync(true))
  await waitFor(() => seen.has(`${user}:web`), `${user}:web to be ready`)
  return seen.get(`${user}:web`)
}

t.test('from a trusted proxy: the PROXY header (v1, v2, split or whole) and X-Forwarded-For name the client', async (t) => {
  const { plugin, seen } = witness()
  const { node } = await startLoggedNode(t, { THREADLINE_TRUST_PROXY: '127.0.0.0/8' }, { plugins: [...PLUGINS, plugin] })

  t.equal(await connectThrough(t, node, Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\n'), 'alice', 'v1'), 0)
  t.equal(await connectThrough(t, node, v2Header(1, [198, 51, 100, 9], 0x11), 'alice', 'v2'), 0)
  t.equal(await connectThrough(t, node, v2Header(1, [0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], 0x21), 'alice', 'v2six', { split: true }), 0)
  t.equal(await connectThrough(t, node, Buffer.from('PROXY TCP6 2001:db8::7 ::1 51234 1883\r\n'), 'alice', 'v1six', { split: true }), 0)
  // the proxy's own connections (health checks) speak for themselves
  t.equal(await connectThrough(t, node, V2_LOCAL, 'alice', 'local'), 0)
  t.equal(await connectThrough(t, node, V2_LOCAL, 'alice', 'localsplit', { split: true }), 0)
  t.equal(await connectThrough(t, node, Buffer.from('PROXY UNKNOWN\r\n'), 'alice', 'unknown'), 0)
  await waitFor(() => seen.size === 7, 'seven clients ready')
  t.same(Object.fromEntries(seen), {
    'alice:v1': '203.0.113.7',
    'alice:v2': '198.51.100.9',
    'alice:v2six': '2001:db8::1:0:0:1',
    'alice:v1six': '2001:db8::7',
    'alice:local': '127.0.0.1',
    'alice:localsplit': '127.0.0.1',
    'alice:unknown': '127.0.0.1'
  })

  // X-Forwarded-For is walked from the right while the hop is trusted: what a client put
  // in front of it ("6.6.6.6") is never taken
  const xff = { 'x-forwarded-for': '6.6.6.6, 198.51.100.1, 127.0.0.2' }
  t.equal(await wsAddress(t, node, seen, 'bob', xff), '198.51.100.1', 'MQTT over WebSocket')
  t.equal(await ipOf(node, xff), '198.51.100.1', 'REST (Fastify trustProxy)')
  t.equal(await ipOf(node, { 'x-real-ip': '6.6.6.6' }), '127.0.0.1', 'X-Real-IP is not read')
})

/** Sends `bytes` on a fresh socket and waits for the node to close it; what the node wrote back. */
async function refusedWith (t: Test, node: Threadline, bytes: Buffer | string, what: string): Promise<Buffer> {
  const socket = await openSocket(node.mqttPort)
  t.teardown(() => socket.destroy())
  const closed = once(socket, 'close')
  const got: Buffer[] = []
  socket.on('data', (chunk: Buffer) => got.push(chunk))
  socket.write(bytes)
  await withTimeout(closed, `${what} to be refused`)
  return Buffer.concat(got)
}

t.test('a trusted peer\'s MQTT connection without a PROXY header is refused: the peer passes a client\'s bytes on as they are', async (t) => {
  const { plugin, seen } = witness()
  const { node, lines } = await startLoggedNode(t, { THREADLINE_TRUST_PROXY: '127.0.0.0/8' }, { plugins: [...PLUGINS, plugin] })
  const reasons: string[] = []
  node.telemetry.on('connectionRefused', ({ reason }) => reasons.push(reason))
  const connect = (device: string): Buffer => connectPacket({ clientId: `alice:${device}`, clean: true, username: 'alice', password: token(node, 'alice') })

  t.equal((await refusedWith(t, node, connect('direct'), 'a bare CONNECT')).length, 0, 'no CONNACK')
  t.equal((await refusedWith(t, node, connect('again'), 'a second bare CONNECT')).length, 0, 'no CONNACK')
  t.same(reasons, ['proxy_header_missing', 'proxy_header_missing'])
  const logged = lines.filter(l => l.reason === 'proxy_header_missing')
  t.equal(logged.length, 1, 'one log line for both: a misconfigured proxy cannot fill the log')
  t.match(logged[0], { level: 30, peer: '127.0.0.1', refused: 1, msg: /sent no PROXY header/ })
  t.notOk(seen.has('alice:direct') || seen.has('alice:again'))
  // the WebSocket and REST ports read no PROXY header: nothing changes there
  t.equal(await wsAddress(t, node, seen, 'bob', {}), '127.0.0.1', 'MQTT over WebSocket without X-Forwarded-For')
})

t.test('a malformed PROXY header from a trusted peer closes the connection', async (t) => {
  const { node } = await startLoggedNode(t, { THREADLINE_TRUST_PROXY: '127.0.0.1' })
  for (const header of ['PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n', 'PROXY TCP4 1.2.3.4 10.0.0.1 1\r\n', `PROXY ${'x'.repeat(120)}`]) {
    await refusedWith(t, node, header, JSON.stringify(header.slice(0, 30)))
    t.pass(`closed: ${JSON.stringify(header.slice(0, 30))}`)
  }
})

t.test('nobody else can claim an address: an untrusted peer\'s PROXY header is refused, its X-Forwarded-For ignored', async (t) => {
  const { plugin, seen } = witness()
  const { node } = await startLoggedNode(t, { THREADLINE_TRUST_PROXY: '10.9.9.9' }, { plugins: [...PLUGINS, plugin] })

  for (const header of [Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\n'), v2Header(1, [203, 0, 113, 7], 0x11)]) {
    const connect = connectPacket({ clientId: 'mallory:spoof', clean: true, username: 'mallory', password: token(node, 'mallory') })
    t.equal((await refusedWith(t, node, Buffer.concat([header, connect]), 'a PROXY header from an untrusted peer')).length, 0, 'no CONNACK: the header is no MQTT')
  }
  t.notOk(seen.has('mallory:spoof'))
  // and without one it is an ordinary client, at its own address
  t.equal(await connectThrough(t, node, Buffer.alloc(0), 'mallory', 'direct'), 0)
  await waitFor(() => seen.has('mallory:direct'), 'mallory:direct to be ready')
  t.equal(seen.get('mallory:direct'), '127.0.0.1')

  const xff = { 'x-forwarded-for': '203.0.113.7', 'x-real-ip': '203.0.113.7' }
  t.equal(await wsAddress(t, node, seen, 'mallory', xff), '127.0.0.1', 'MQTT over WebSocket: the peer\'s own address')
  t.equal(await ipOf(node, xff), '127.0.0.1', 'REST: the peer\'s own address')
})

t.test('without THREADLINE_TRUST_PROXY nobody is trusted, and WebSocket clients get their socket\'s address', async (t) => {
  const { plugin, seen } = witness()
  const { node } = await startLoggedNode(t, {}, { plugins: [...PLUGINS, plugin] })
  t.equal(await wsAddress(t, node, seen, 'carol', { 'x-forwarded-for': '203.0.113.7' }), '127.0.0.1')
  t.equal(await ipOf(node, { 'x-forwarded-for': '203.0.113.7' }), '127.0.0.1')
})

t.test('parseProxyHeader: partial headers wait, other first bytes are no header', async (t) => {
  t.equal(parseProxyHeader(Buffer.from([0x10, 0x20])), 'none', 'a CONNECT')
  t.equal(parseProxyHeader(Buffer.from('PRO')), null)
  t.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4')), null)
  t.equal(parseProxyHeader(v2Header(1, [1, 2, 3, 4], 0x11).subarray(0, 20)), null)
  t.same(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nmore')), { address: '1.2.3.4', length: 32 })
  t.throws(() => parseProxyHeader(Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n')), ProxyHeaderError, 'an IPv6 address under TCP4')
  const badVersion = v2Header(1, [1, 2, 3, 4], 0x11)
  badVersion[12] = 0x31
  t.throws(() => parseProxyHeader(badVersion), ProxyHeaderError)
})
