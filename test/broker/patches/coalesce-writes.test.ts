// broker/patches/coalesce-writes.ts: of the packets written to a connection from several
// immediate callbacks of one turn of the event loop (Aedes' deliveries), the first leaves at
// once and the others together in one more write, in order; a connection written once per
// turn waits for nothing. Pins what it relies on: mqtt-packet's writeToStream corks the
// stream until the next tick.
import { Writable } from 'node:stream'
import { setImmediate as turn } from 'node:timers/promises'
import t from 'tap'
import mqtt from 'mqtt-packet'
import { coalesceWrites } from '../../../broker/patches/coalesce-writes.js'

/** A connection that records each write it is handed: a list of chunks per write. */
function recorder (): { conn: Writable, writes: Buffer[][] } {
  const writes: Buffer[][] = []
  const conn = new Writable({
    write (chunk: Buffer, _enc, cb) { writes.push([chunk]); cb() },
    writev (chunks, cb) { writes.push(chunks.map(c => c.chunk as Buffer)); cb() }
  })
  return { conn, writes }
}

const publish = (n: number): mqtt.IPublishPacket => ({ cmd: 'publish', topic: `user/u${n}/inbox`, payload: Buffer.from(`{"n":${n}}`), qos: 1, messageId: n, retain: false, dup: false })

/** Writes one packet from each of three immediate callbacks, as Aedes delivers. */
async function deliverThree (conn: Writable): Promise<void> {
  for (const n of [1, 2, 3]) setImmediate(() => mqtt.writeToStream(publish(n), conn))
  await turn()
  await turn()
}

const parsed = (writes: Buffer[][]): number[] => {
  const parser = mqtt.parser()
  const got: number[] = []
  parser.on('packet', (p) => { if (p.cmd === 'publish') got.push(JSON.parse(p.payload.toString()).n as number) })
  parser.parse(Buffer.concat(writes.flat()))
  return got
}

t.test('mqtt-packet corks the stream for the packet and uncorks it on the next tick', async (t) => {
  const { conn, writes } = recorder()
  mqtt.writeToStream(publish(1), conn)
  t.equal(conn.writableCorked, 1, 'corked while the packet is written')
  t.equal(writes.length, 0)
  await new Promise(resolve => process.nextTick(resolve))
  t.equal(conn.writableCorked, 0)
  t.equal(writes.length, 1, 'one write of its parts')
})

t.test('the witness: without the patch, each immediate\'s packet is a write of its own', async (t) => {
  const { conn, writes } = recorder()
  await deliverThree(conn)
  t.equal(writes.length, 3)
})

t.test('with it, the first leaves at once, the two after it together once the turn is over, in order', async (t) => {
  const { conn, writes } = recorder()
  coalesceWrites(conn)
  setImmediate(() => mqtt.writeToStream(publish(1), conn))
  await new Promise(resolve => setImmediate(resolve))
  t.equal(writes.length, 1, 'the first packet of the turn is not held')
  await deliverThree(conn)
  t.equal(writes.length, 3, 'the next turn: its first packet, then the other two in one write')
  t.same(parsed(writes), [1, 1, 2, 3])
  t.equal(conn.writableCorked, 0, 'nothing held once written')
})

t.test('a connection written once per turn waits for nothing', async (t) => {
  const { conn, writes } = recorder()
  coalesceWrites(conn)
  for (const n of [1, 2]) {
    mqtt.writeToStream(publish(n), conn)
    await new Promise(resolve => process.nextTick(resolve))
    t.equal(writes.length, n, `packet ${n} out on the next tick, as without the patch`)
    await turn()
    await turn()
  }
})

t.test('a connection destroyed while held lets go quietly', async (t) => {
  const { conn } = recorder()
  coalesceWrites(conn)
  conn.on('error', () => {})
  mqtt.writeToStream(publish(1), conn)
  conn.destroy()
  await turn()
  await turn()
  t.ok(conn.destroyed)
})
