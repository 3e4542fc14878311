// broker/patches/ lean on Aedes and mqtt-packet internals. These tests pin the upstream
// behaviour each patch works around, and fail when an upgrade changes it.
import { type Duplex, PassThrough } from 'node:stream'
import t from 'tap'
import { startNode } from '../helpers/node.js'
import { remainingLength, within } from '../helpers/raw-mqtt.js'
import { limitPacketSize, PacketTooLarge } from '../../broker/patches/packet-size.js'

const node = await startNode(t, { store: 'pglite' })

interface Internals {
  _parser: { packet: { length: number }, _list: { length: number }, parse(buf: Buffer): unknown, _parseLength: unknown }
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
