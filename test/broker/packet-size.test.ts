// "Memory is bounded everywhere, before authentication included" (DESIGN.md §4): a packet
// is refused from its fixed header, before its body is buffered — on TCP and WebSocket
// alike, with a small limit until the CONNECT is accepted.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type net from 'node:net'
import v8 from 'node:v8'
import vm from 'node:vm'
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { collect, connectUser, startNode } from '../helpers/node.js'
import { closed } from '../helpers/access.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { openSocket, remainingLength, within } from '../helpers/raw-mqtt.js'

// what the node still holds, not what it dropped and the collector has yet to free
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const MiB = 1024 * 1024
const ANNOUNCED = 200 * MiB
/** per connection, what a client pushes after the header unless the server hangs up first */
const PUSHED = 16 * MiB
const CHUNK = Buffer.alloc(64 * 1024, 0x61)
const connectHeader = Buffer.concat([Buffer.from([0x10]), remainingLength(ANNOUNCED)])

/** How an attacker's bytes reach the broker: a TCP socket, raw or carrying WebSocket frames. */
interface Pipe {
  write(chunk: Buffer): Promise<void>
  readonly isClosed: boolean
  readonly closedAt: Promise<void>
}

/**
 * Bytes go out as they are, or wrapped by `frame`. Each distinct chunk is wrapped once,
 * so the client allocates nothing per write and the node's buffers are what is measured.
 */
function pipeOver (socket: net.Socket, frame: (chunk: Buffer) => Buffer = (c) => c): Pipe {
  socket.on('error', () => {}) // EPIPE/ECONNRESET once the server hung up: expected
  const closedAt = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const framed = new Map<Buffer, Buffer>()
  return {
    get isClosed () { return socket.destroyed },
    closedAt,
    write: async (chunk) => {
      let bytes = framed.get(chunk)
      if (bytes === undefined) framed.set(chunk, bytes = frame(chunk))
      if (socket.write(bytes)) return
      await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closedAt])
    }
  }
}

/** A binary WebSocket frame as a client must send it: masked (here with a zero key, which leaves the bytes as they are). */
function wsFrame (payload: Buffer): Buffer {
  const n = payload.length
  const length = n < 126 ? Buffer.from([0x80 | n]) : n < 65536 ? Buffer.from([0x80 | 126, n >> 8, n & 0xff]) : Buffer.concat([Buffer.from([0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b })()])
  return Buffer.concat([Buffer.from([0x82]), length, Buffer.alloc(4), payload])
}

async function wsPipe (port: number): Promise<Pipe> {
  const socket = await openSocket(port)
  socket.write(`GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`)
  const [head] = await once(socket, 'data') as [Buffer]
  if (!head.toString().startsWith('HTTP/1.1 101')) throw new Error(`no WebSocket upgrade: ${head.toString().split('\r\n')[0]}`)
  return pipeOver(socket, wsFrame)
}

/** Announces a 200 MiB CONNECT on `n` connections at once and pushes up to 16 MiB of it on each. */
async function floodConnects (open: () => Promise<Pipe>, n: number): Promise<{ pipes: Pipe[], pushed: number[] }> {
  const pipes = await Promise.all(Array.from({ length: n }, open))
  const pushed = await Promise.all(pipes.map(async (pipe) => {
    let sent = 0
    await pipe.write(connectHeader)
    while (sent < PUSHED && !pipe.isClosed) {
      await pipe.write(CHUNK)
      sent += CHUNK.length
    }
    return sent
  }))
  return { pipes, pushed }
}

// a real PostgreSQL: PGlite's WebAssembly heap would blur the buffer measurements
const node = await startNode(t)

for (const transport of ['tcp', 'ws'] as const) {
  t.test(`${transport}: unauthenticated CONNECTs announcing 200 MiB are closed at once and hold no memory`, async (t) => {
    const open = transport === 'tcp' ? async () => pipeOver(await openSocket(node.mqttPort)) : () => wsPipe(node.httpPort)
    gc()
    const before = process.memoryUsage().arrayBuffers
    const { pipes, pushed } = await within(floodConnects(open, 4), 20_000, 'pushing the CONNECT bodies')
    gc()
    const grown = process.memoryUsage().arrayBuffers - before
    t.ok(grown < 8 * MiB, `buffers grew by ${(grown / MiB).toFixed(1)} MiB while 4 connections pushed ${(pushed.reduce((a, b) => a + b, 0) / MiB).toFixed(1)} MiB`)
    await within(Promise.all(pipes.map(p => p.closedAt)), 5_000, 'the server did not close the connections')
    for (const sent of pushed) t.ok(sent < PUSHED, `the server hung up before the client pushed all 16 MiB (it pushed ${(sent / MiB).toFixed(2)} MiB)`)

    // the node still serves: a real client connects and gets its inbox
    const alice = await connectUser(t, node, userId('alice'), 'phone', { ws: transport === 'ws' })
    t.ok(alice.connected, 'a legitimate client connects afterwards')
  })
}

t.test('a CONNECT just over the 8 KiB limit before authentication is closed without a CONNACK', async (t) => {
  const socket = await openSocket(node.mqttPort)
  socket.on('error', () => {})
  const got: Buffer[] = []
  socket.on('data', (chunk: Buffer) => got.push(chunk))
  const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.write(Buffer.concat([Buffer.from([0x10]), remainingLength(8193), Buffer.alloc(100)]))
  await within(gone, 5_000, 'the server did not close the connection')
  t.equal(Buffer.concat(got).length, 0, 'no CONNACK, nothing at all')
})

interface Msg { t: string, code?: string, message?: string, client_msg_id?: string }

const PAYLOAD_LIMIT = 8192
const PACKET_CAP = PAYLOAD_LIMIT + 1024

/** A text send whose PUBLISH (QoS 1) has exactly `remaining` bytes after the fixed header. */
function sendOfPacketSize (convId: string, clientMsgId: string, remaining: number): string {
  const topicBytes = 2 + Buffer.byteLength(`conv/${convId}/send`)
  const payload = remaining - topicBytes - 2 // the packet id
  const empty = text(clientMsgId, '')
  return text(clientMsgId, 'x'.repeat(payload - empty.length))
}

for (const transport of ['tcp', 'ws'] as const) {
  t.test(`${transport}: a send over THREADLINE_MAX_PAYLOAD_BYTES gets too_large up to the packet cap; one byte more closes the connection`, async (t) => {
    const node = await startNode(t, { store: 'pglite', env: { THREADLINE_MAX_PAYLOAD_BYTES: String(PAYLOAD_LIMIT) } })
    const alice = userId('alice')
    const conv = await createConversation(node, [alice, userId('bob')])
    const connect = async (device: string): Promise<MqttClient> => {
      const client = await connectUser(t, node, alice, device, { ws: transport === 'ws' })
      await client.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
      return client
    }

    const a = await connect('phone')
    let dropped = false
    a.on('close', () => { dropped = true })
    const cases: Array<[string, string]> = [
      ['a payload 100 bytes over the limit', text('big-1', 'x'.repeat(PAYLOAD_LIMIT + 100))],
      [`a packet of exactly the cap (${PACKET_CAP} bytes)`, sendOfPacketSize(conv, 'big-2', PACKET_CAP)]
    ]
    for (const [what, payload] of cases) {
      const answer = collect<Msg>(a, 1, (_t, m) => m.t === 'error')
      await within(a.publishAsync(`conv/${conv}/send`, payload, { qos: 1 }), 5_000, `${what}: no PUBACK`)
      t.match((await within(answer, 5_000, `${what}: no error event`))[0], { code: 'too_large', message: /limit is 8192/ }, `${what}: PUBACK and too_large`)
    }
    t.notOk(dropped, 'the connection stays up')
    const ok = collect<Msg>(a, 1, (_t, m) => m.t === 'event')
    await a.publishAsync(`conv/${conv}/send`, text('small-1', 'still here'), { qos: 1 })
    t.match((await within(ok, 5_000, 'no event'))[0], { client_msg_id: 'small-1' }, 'and still sends')

    // over the packet cap: nobody can be answered for it, the connection closes
    const b = await connect('laptop')
    const gone = closed(b)
    b.publish(`conv/${conv}/send`, sendOfPacketSize(conv, 'huge-1', PACKET_CAP + 1), { qos: 1 })
    await within(gone, 5_000, 'a packet one byte over the cap: the connection was not closed')
    const rows = await node.store.query<{ client_msg_id: string }>('SELECT client_msg_id FROM events WHERE conv_id = $1', [conv])
    t.same(rows.map(r => r.client_msg_id), ['small-1'], 'no oversized send was stored')
  })
}
