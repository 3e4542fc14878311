// "A client that stops reading is disconnected once what waits for it passes a bound"
// and never delays anyone else (DESIGN.md §4, Isolated); its persistent session keeps
// what it missed.
import { once } from 'node:events'
import t from 'tap'
import WebSocket from 'ws'
import { UNLIMITED_SENDS, connectUser, startNode } from '../helpers/node.js'
import { connectRecording, createConversation, queuedTopics } from '../helpers/access.js'
import { text, userId } from '../helpers/fixtures.js'
import { connectPacket, framePackets, openSocket, readBytes, subscribePacket, within } from '../helpers/raw-mqtt.js'
import type { Threadline } from '../../broker/server.js'

/** 4000 four-byte code points: the largest text, ~16 KB per event, so buffers fill fast */
const BIG = '😀'.repeat(4000)
const SENDS = 400
const IN_FLIGHT = 20
const BUFFER_BYTES = 256 * 1024

interface Msg { t: string, seq?: number, client_msg_id?: string }

/**
 * Connects `<user>:phone` with clean=false over a raw socket, subscribes to its inbox at
 * QoS 1, and then never reads again: the kernel buffers fill, then the broker's.
 */
async function stuckSubscriber (node: Threadline, transport: 'tcp' | 'ws', user: string): Promise<() => void> {
  const connect = connectPacket({ clientId: `${user}:phone`, clean: false, username: user, password: node.tokens.sign({ sub: user }, 3600) })
  const subscribe = subscribePacket(1, `user/${user}/inbox`, 1)
  if (transport === 'tcp') {
    const socket = await openSocket(node.mqttPort)
    socket.on('error', () => {})
    socket.write(connect)
    const connack = await readBytes(socket, 4)
    if (connack[3] !== 0) throw new Error(`CONNACK ${connack[3]}`)
    socket.write(subscribe)
    await readBytes(socket, 5)
    socket.pause()
    return () => socket.destroy()
  }
  const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/mqtt`, 'mqtt')
  ws.on('error', () => {})
  await once(ws, 'open')
  // Aedes writes a packet in pieces, and each piece travels as a frame of its own (a
  // CONNACK is four frames, all arriving in one tick): gather them all
  let got = Buffer.alloc(0)
  let arrived = (): void => {}
  ws.on('message', (data: Buffer) => {
    got = Buffer.concat([got, data])
    arrived()
  })
  const read = async (n: number): Promise<Buffer> => {
    while (got.length < n) await new Promise<void>((resolve) => { arrived = resolve })
    const packet = got.subarray(0, n)
    got = got.subarray(n)
    return packet
  }
  ws.send(connect)
  const connack = await read(4)
  if (connack[3] !== 0) throw new Error(`CONNACK ${connack[3]}`)
  ws.send(subscribe)
  await read(5)
  ws.pause()
  return () => ws.terminate()
}

/** Resolves once `check` holds, looking every 10 ms (server state no event announces); rejects after `ms`. */
async function until (check: () => boolean | Promise<boolean>, ms: number, message: () => string): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${message()} (after ${ms} ms)`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

// sessions in the node's memory over TCP and WebSocket, and in Redis (a cluster's)
const variants = [['tcp', false], ['ws', false], ['tcp', true]] as const

for (const [transport, redis] of variants) {
  t.test(`${transport}${redis ? ', sessions in Redis' : ''}: a subscriber that stops reading delays nobody, is disconnected past its buffer bound, and its session keeps what it missed`, async (t) => {
    const node = await startNode(t, { redis, env: { THREADLINE_CLIENT_BUFFER_BYTES: String(BUFFER_BYTES), ...UNLIMITED_SENDS } })
    const [alice, bob, slow] = [userId('alice'), userId('bob'), userId('slow')]
    const conv = await createConversation(node, [alice, bob, slow])
    const a = await connectUser(t, node, alice, 'phone')
    const b = await connectUser(t, node, bob, 'phone')
    await b.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })

    const slowId = `${slow}:phone`
    let slowGoneAt = 0
    const slowGone = new Promise<void>((resolve) => {
      node.broker.on('clientDisconnect', (client) => {
        if (client.id !== slowId) return
        slowGoneAt = Date.now()
        resolve()
      })
    })
    t.teardown(await stuckSubscriber(node, transport, slow))

    // bob's latency, PUBACK of alice's send → arrival on bob's inbox
    const ackedAt = new Map<string, number>()
    const latencies: number[] = []
    const bobGotAll = new Promise<void>((resolve) => {
      b.on('message', (_topic, payload) => {
        const msg = JSON.parse(payload.toString()) as Msg
        if (msg.t !== 'event' || msg.client_msg_id === undefined) return
        latencies.push(Date.now() - (ackedAt.get(msg.client_msg_id) ?? Date.now()))
        if (latencies.length === SENDS) resolve()
      })
    })
    const started = Date.now()
    let next = 0
    let connectedSends = 0 // sends PUBACKed while the slow client was still connected
    await within(Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (next < SENDS) {
        const id = `m-${next++}`
        await a.publishAsync(`conv/${conv}/send`, text(id, BIG), { qos: 1 })
        ackedAt.set(id, Date.now())
        if (slowGoneAt === 0) connectedSends++
      }
    })), 60_000, 'alice\'s sends were not all PUBACKed')
    await within(bobGotAll, 10_000, `bob got ${latencies.length} of ${SENDS} messages`)
    const worst = Math.max(...latencies)
    t.ok(worst < 3_000, `bob's worst delivery came ${worst} ms after its PUBACK (all ${SENDS} in ${Date.now() - started} ms)`)

    await within(slowGone, 10_000, 'the slow client was not disconnected')
    t.ok(connectedSends > 0, `${connectedSends} sends were delivered to bob while the slow client was still connected`)

    // its persistent session kept every event it never acknowledged, and gives them back
    // fan-out follows the PUBACK: the last events may still be on their way into the queue
    let queued = 0
    await until(async () => (queued = (await queuedTopics(node, slowId)).length) >= SENDS, 10_000, () => `${queued} of ${SENDS} events were queued`)
    t.equal(queued, SENDS, 'every missed event waits in the session')
    const back = await connectRecording(t, node, slow, 'phone', { clean: false })
    const inbox = (): number => back.got.filter(m => m.topic === `user/${slow}/inbox`).length
    await within(new Promise<void>((resolve) => {
      const check = (): void => {
        if (inbox() < SENDS) return
        back.client.off('message', check)
        resolve()
      }
      back.client.on('message', check)
      check()
    }), 20_000, `the reconnected session got ${inbox()} of the ${SENDS} missed events`)
    const seqs = back.got.map(m => (JSON.parse(m.payload) as Msg).seq).sort((x, y) => (x ?? 0) - (y ?? 0))
    t.same(seqs, Array.from({ length: SENDS }, (_, i) => i + 1), 'the reconnected device gets seq 1…N, nothing lost')
  })
}

for (const redis of [false, true]) {
  t.test(`${redis ? 'sessions in Redis: ' : ''}a persistent session's queue far larger than the bound is replayed as its client reads, not cut off at every reconnect`, async (t) => {
    const node = await startNode(t, { redis, env: { THREADLINE_CLIENT_BUFFER_BYTES: String(BUFFER_BYTES), ...UNLIMITED_SENDS } })
    const [alice, slow] = [userId('alice'), userId('slow')]
    const conv = await createConversation(node, [alice, slow])
    const slowId = `${slow}:phone`
    const away = await connectUser(t, node, slow, 'phone', { clean: false })
    await away.subscribeAsync(`user/${slow}/inbox`, { qos: 1 })
    await away.endAsync()

    // ~6.5 MB waits in the session: more than the kernel's buffers and the bound together
    const a = await connectUser(t, node, alice, 'phone')
    let next = 0
    await within(Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (next < SENDS) await a.publishAsync(`conv/${conv}/send`, text(`q-${next++}`, BIG), { qos: 1 })
    })), 60_000, 'alice\'s sends were not all PUBACKed')
    // fan-out follows the PUBACK: the last events may still be on their way into the queue
    let queued = 0
    await until(async () => (queued = (await queuedTopics(node, slowId)).length) >= SENDS, 10_000, () => `${queued} of ${SENDS} events were queued`)
    t.equal(queued, SENDS, 'the whole backlog is queued')

    let disconnected = false
    node.broker.on('clientDisconnect', (client) => { if (client.id === slowId) disconnected = true })
    const socket = await openSocket(node.mqttPort)
    t.teardown(() => socket.destroy())
    socket.on('error', () => {})
    let publishes = 0
    let connack = -1
    let allArrived = (): void => {}
    const arrived = new Promise<void>((resolve) => { allArrived = resolve })
    framePackets(socket, (first, body) => {
      if (first === 0x20) connack = body[1] as number
      if ((first & 0xf0) === 0x30 && ++publishes === SENDS) allArrived()
    })
    socket.write(connectPacket({ clientId: slowId, clean: false, username: slow, password: node.tokens.sign({ sub: slow }, 3600) }))
    // a device on a slow link: it reads nothing while the replay fills every buffer
    socket.pause()
    const serverSide = (): { conn: { writableNeedDrain: boolean } } | undefined =>
      (node.broker as unknown as { clients: Record<string, { conn: { writableNeedDrain: boolean } }> }).clients[slowId]
    await until(() => disconnected || serverSide()?.conn.writableNeedDrain === true, 10_000, () => 'the replay never filled the connection')
    t.notOk(disconnected, 'the replay waits for the client instead of overrunning the bound')

    socket.resume()
    await within(arrived, 20_000, `the client got ${publishes} of the ${SENDS} queued events`)
    t.equal(connack, 0, 'CONNACK 0')
    t.notOk(disconnected, 'all of the backlog arrived over the one connection')
  })
}
