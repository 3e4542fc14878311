// Helpers for the auth and ACL tests: refused CONNECTs and their codes, SUBACK codes,
// conversations made directly in SQL (membership announced as the REST routes do), what
// a client received, and a look into Aedes' session store.
import { createConversation as createFixtureConversation } from './fixtures.js'
import net from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import type { MembershipChange } from '../../core/membership/notify.js'
import type { Threadline } from '../../broker/server.js'
import { token } from './node.js'
import { remainingLength } from './raw-mqtt.js'
import { DEFAULT_WAIT_MS, withTimeout } from './wait.js'

interface Teardownable { teardown(fn: () => unknown): void }

export const tcpUrl = (node: Threadline): string => `mqtt://127.0.0.1:${node.mqttPort}`
export const wsUrl = (node: Threadline): string => `ws://127.0.0.1:${node.httpPort}/mqtt`

/** Connects with any options; resolves once CONNACK 0 arrived. */
export async function connectRaw (t: Teardownable, url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, ...opts })
  t.teardown(() => client.endAsync(true))
  return client
}

/**
 * Connects expecting the broker to refuse; resolves with the CONNACK return code.
 * Rejects when the connection is accepted or closes without a CONNACK.
 */
export function connackRefusal (t: Teardownable, url: string, opts: IClientOptions): Promise<number> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, ...opts })
  t.teardown(() => client.endAsync(true))
  return withTimeout(new Promise((resolve, reject) => {
    client.once('connect', () => reject(new Error('the broker accepted the connection')))
    client.once('error', (err) => {
      const code = (err as { code?: unknown }).code
      if (typeof code === 'number') resolve(code)
      else reject(err)
    })
    client.once('close', () => reject(new Error('closed without a CONNACK')))
  }), `a refusing CONNACK for ${String(opts.clientId)}`)
}

/**
 * Sends one MQTT 3.1.1 CONNECT by hand over TCP and resolves with the CONNACK return
 * code: for CONNECTs MQTT.js refuses to send (an empty clientId with clean=false).
 */
export function rawConnack (port: number, opts: { clientId: string, clean: boolean, username?: string, password?: string }): Promise<number> {
  const str = (s: string): Buffer => {
    const b = Buffer.from(s, 'utf8')
    const len = Buffer.alloc(2)
    len.writeUInt16BE(b.length)
    return Buffer.concat([len, b])
  }
  const flags = (opts.username !== undefined ? 0x80 : 0) | (opts.password !== undefined ? 0x40 : 0) | (opts.clean ? 0x02 : 0)
  const body = Buffer.concat([
    str('MQTT'), Buffer.from([4, flags, 0, 60]), str(opts.clientId),
    ...(opts.username !== undefined ? [str(opts.username)] : []),
    ...(opts.password !== undefined ? [str(opts.password)] : [])
  ])
  let socket: net.Socket | undefined
  return withTimeout(new Promise<number>((resolve, reject) => {
    socket = net.connect(port, '127.0.0.1', () => socket?.write(Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body])))
    let got = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk])
      if (got.length < 4) return
      socket?.destroy()
      if (got[0] !== 0x20 || got[1] !== 2) reject(new Error(`not a CONNACK: ${got.toString('hex')}`))
      else resolve(got[3] as number)
    })
    socket.on('error', reject)
    socket.on('close', () => reject(new Error('closed without a CONNACK')))
  }), `a CONNACK to a hand-made CONNECT of ${JSON.stringify(opts.clientId)}`, DEFAULT_WAIT_MS, () => socket?.destroy())
}

/** Subscribes and resolves with SUBACK's granted codes (128 = refused), in order. */
export function suback (client: MqttClient, topics: string | string[], qos: 0 | 1 | 2 = 1): Promise<number[]> {
  return withTimeout(new Promise((resolve, reject) => {
    client.subscribe(topics, { qos }, (err, _granted, packet) => {
      // MQTT.js fails the whole call when any code is 0x80; the SUBACK rides on the error
      const granted = packet?.granted ?? (err as { packet?: { granted?: unknown } } | null)?.packet?.granted
      if (Array.isArray(granted)) resolve(granted as number[])
      else reject(err ?? new Error('no SUBACK'))
    })
  }), `a SUBACK for ${JSON.stringify(topics)}`)
}

/** Resolves when the client's connection closes (the broker hung up). */
export function closed (client: MqttClient, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
  if (!client.connected && client.disconnected) return Promise.resolve()
  let onClose = (): void => {}
  return withTimeout(new Promise<void>((resolve) => {
    onClose = () => resolve()
    client.once('close', onClose)
  }), `the broker to close ${client.options.clientId ?? 'a client'}'s connection`, timeoutMs, () => client.off('close', onClose))
}

/** Resolves with the first message on `topic` (exact match), parsed as JSON. */
export function nextMessage<T = Record<string, unknown>> (client: MqttClient, topic: string, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
  let onMessage = (_got: string, _payload: Buffer): void => {}
  return withTimeout(new Promise<T>((resolve) => {
    onMessage = (got, payload) => {
      if (got === topic) resolve(JSON.parse(payload.toString()) as T)
    }
    client.on('message', onMessage)
  }), `a message on ${topic} at ${client.options.clientId ?? 'a client'}`, timeoutMs, () => client.off('message', onMessage))
}

/** Everything a client receives, for asserting what did NOT arrive. */
export function record (client: MqttClient): Array<{ topic: string, payload: string }> {
  const got: Array<{ topic: string, payload: string }> = []
  client.on('message', (topic, payload) => { got.push({ topic, payload: payload.toString() }) })
  return got
}

/** What a client received so far, and a wait for the first message on a topic. */
export interface Recording {
  readonly client: MqttClient
  readonly got: Array<{ topic: string, payload: string }>
  first(topic: string): Promise<Record<string, unknown>>
}

/**
 * Connects `<user>:<device>` (fresh token) with a recorder attached before the CONNACK:
 * a persistent session's offline queue is written right behind the CONNACK, often in
 * the same TCP read, before an awaited connect would let a listener be added.
 */
export async function connectRecording (t: Teardownable, node: Threadline, user: string, device: string, opts: IClientOptions = {}): Promise<Recording> {
  const client = mqtt.connect(tcpUrl(node), {
    clientId: `${user}:${device}`, username: user, password: token(node, user), protocolVersion: 4, reconnectPeriod: 0, ...opts
  })
  t.teardown(() => client.endAsync(true))
  const got = record(client)
  await withTimeout(new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  }), `a CONNACK for ${user}:${device}`)
  return {
    client,
    got,
    first: (topic) => {
      const seen = got.find(m => m.topic === topic)
      if (seen) return Promise.resolve(JSON.parse(seen.payload) as Record<string, unknown>)
      return nextMessage(client, topic)
    }
  }
}

/** Applies a committed membership change on the node, the way the REST routes do. */
export async function announce (node: Threadline, change: MembershipChange): Promise<void> {
  await node.membership.announce(change)
}

/** A group conversation of `members`, created in SQL; returns its id. */
export async function createConversation (node: Threadline, members: string[]): Promise<string> {
  return await createFixtureConversation(node, members, 'group')
}

export async function removeMember (node: Threadline, convId: string, userId: string): Promise<void> {
  await node.store.query('DELETE FROM members WHERE conv_id = $1 AND user_id = $2', [convId, userId])
  await announce(node, { conv_id: convId, added: [], removed: [userId] })
}

/** A text send over MQTT (QoS 1): resolves at PUBACK, i.e. once the event is stored. */
export async function sendText (client: MqttClient, convId: string, clientMsgId: string, text = 'hi'): Promise<void> {
  await client.publishAsync(`conv/${convId}/send`, JSON.stringify({ client_msg_id: clientMsgId, type: 'text', text }), { qos: 1 })
}

interface Persistence {
  subscriptionsByClient(client: { id: string }): Promise<Array<{ topic: string, qos: number }>>
  outgoingStream(client: { id: string }): AsyncIterable<{ topic: string }>
}
/** Aedes' session store (in memory or Redis); its typings leave it out. */
const persistenceOf = (node: Threadline): Persistence => (node.broker as unknown as { persistence: Persistence }).persistence

/** The topics stored for a persistent session (what a clean=false reconnect restores). */
export async function storedTopics (node: Threadline, clientId: string): Promise<string[]> {
  return (await persistenceOf(node).subscriptionsByClient({ id: clientId })).map(s => s.topic).sort()
}

/** The topics of the packets waiting in a persistent session's offline queue. */
export async function queuedTopics (node: Threadline, clientId: string): Promise<string[]> {
  const topics: string[] = []
  for await (const packet of persistenceOf(node).outgoingStream({ id: clientId })) topics.push(packet.topic)
  return topics
}

/**
 * Resolves when the broker has finished publishing a packet on `topic`: Aedes emits
 * 'publish' after the packet went to live subscribers and into the offline queues.
 */
export function published (node: Threadline, topic: string, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
  let onPublish = (_packet: { topic: string }): void => {}
  return withTimeout(new Promise<void>((resolve) => {
    onPublish = (packet) => { if (packet.topic === topic) resolve() }
    node.broker.on('publish', onPublish)
  }), `the broker to publish on ${topic}`, timeoutMs, () => node.broker.off('publish', onPublish))
}

/** Resolves when Aedes has finished a client's CONNECT (offline queue emptied, 'clientReady'). */
export function clientReady (node: Threadline, clientId: string, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
  let onReady = (_client: { id: string }): void => {}
  return withTimeout(new Promise<void>((resolve) => {
    onReady = (client) => { if (client.id === clientId) resolve() }
    node.broker.on('clientReady', onReady)
  }), `Aedes' clientReady of ${clientId}`, timeoutMs, () => node.broker.off('clientReady', onReady))
}
