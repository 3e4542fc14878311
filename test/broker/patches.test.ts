// broker/patches/ lean on Aedes and mqtt-packet internals. These tests pin the upstream
// behaviour each patch works around, and fail when an upgrade changes it.
import { Duplex, PassThrough } from 'node:stream'
import t from 'tap'
import { startNode } from '../helpers/node.js'
import { remainingLength, within } from '../helpers/raw-mqtt.js'
import { limitPacketSize, PacketTooLarge } from '../../broker/patches/packet-size.js'
import { boundWriteBuffer, SlowClient } from '../../broker/patches/write-buffer.js'
import { createLogger } from '../../broker/logger.js'

const node = await startNode(t, { store: 'pglite' })
const log = createLogger('silent')

interface Internals {
  _parser: { packet: { length: number }, _list: { length: number }, parse(buf: Buffer): unknown, _parseLength: unknown }
  waitForDrain(done: (err: Error | null) => void): void
  publish(packet: object, done: () => void): void
  connected: boolean
}

/** An Aedes client on an in-memory stream (no listener, no patches unless the test adds them). */
function clientOn (t: { teardown(fn: () => unknown): void }, conn: Duplex): Internals {
  const client = node.broker.handle(conn) as unknown as Internals
  t.teardown(() => { conn.destroy() })
  return client
}

t.test('mqtt-packet knows the remaining length from the fixed header, before the body is buffered', async (t) => {
  const client = clientOn(t, new PassThrough())
  t.type(client._parser._parseLength, 'function', 'Parser#_parseLength exists')
  client._parser.parse(Buffer.concat([Buffer.from([0x30]), remainingLength(200 * 1024 * 1024)]))
  t.equal(client._parser.packet.length, 200 * 1024 * 1024, 'packet.length is set from the header alone')
  t.equal(client._parser._list.length, 0, 'and the header bytes are consumed')
})

t.test('limitPacketSize closes the connection on the header of a packet over the limit', async (t) => {
  const conn = new PassThrough()
  const client = clientOn(t, conn)
  limitPacketSize(client, { beforeConnectBytes: 100, packetBytes: 1000 })
  const errors: Error[] = []
  ;(client as unknown as NodeJS.EventEmitter).prependListener('error', (err: Error) => errors.push(err))
  const closed = new Promise<void>((resolve) => conn.once('close', () => resolve()))
  client._parser.parse(Buffer.concat([Buffer.from([0x10]), remainingLength(101), Buffer.alloc(50)]))
  await within(closed, 2_000, 'the connection was not closed')
  t.ok(errors[0] instanceof PacketTooLarge, 'the client errs with PacketTooLarge')
  t.match(errors[0]?.message, /connect of 101 bytes is over the limit of 100 bytes/)
  t.equal(client._parser._list.length, 0, 'nothing of the body is kept')
})

/** A stream that accepts writes and never finishes one: a peer that stopped reading. */
function stuckStream (): Duplex {
  return new Duplex({ read () {}, write () {}, highWaterMark: 1 })
}

const probe = { cmd: 'publish', topic: 'probe/x', payload: Buffer.alloc(64), qos: 0, retain: false, dup: false }

t.test('Aedes asks client.waitForDrain when a stream is full, and waits for its callback', async (t) => {
  const client = clientOn(t, stuckStream())
  client.connected = true // as after CONNACK: Aedes writes only to connected clients
  let asked = 0
  const waited = new Promise<void>((resolve) => {
    // never calls back, as Aedes' own would not until 'drain'
    client.waitForDrain = () => { asked++; resolve() }
  })
  let delivered = false
  client.publish(probe, () => { delivered = true })
  await within(waited, 2_000, 'waitForDrain was never called')
  // Aedes calls back on setImmediate when it does not wait: give it that turn
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(asked, 1, 'write() defers to waitForDrain')
  t.notOk(delivered, 'and the delivery waits for it: what boundWriteBuffer replaces')
})

t.test('boundWriteBuffer calls back at once, and destroys the connection past the bound', async (t) => {
  const conn = stuckStream()
  const client = clientOn(t, conn)
  client.connected = true
  const destroyed: Error[] = []
  boundWriteBuffer<Duplex>(client, { maxBytes: 300, buffered: (c) => c.writableLength, destroy: (_c, err) => destroyed.push(err), log })
  for (let i = 1; i <= 3; i++) {
    await within(new Promise<void>((resolve) => client.publish(probe, resolve)), 2_000, `delivery ${i} waited for drain`)
  }
  t.equal(destroyed.length, 0, `under the bound (${conn.writableLength} bytes buffered) the connection stays`)
  for (let i = 4; i <= 6; i++) {
    await within(new Promise<void>((resolve) => client.publish(probe, resolve)), 2_000, `delivery ${i} waited for drain`)
  }
  t.equal(destroyed.length, 1, 'past the bound, destroyed once')
  t.ok(destroyed[0] instanceof SlowClient, 'with SlowClient')
  t.match(destroyed[0]?.message, /over the limit of 300 \(THREADLINE_CLIENT_BUFFER_BYTES\)/)
})
