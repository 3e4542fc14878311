// broker/patches/drop-raw-chat-packets.ts replaces Aedes' broker.publish. These pin what it
// relies on and works around: Aedes 1.2 hands every client PUBLISH it has authorized to
// broker.publish(packet, client, done), with the client, and broker.publish routes it to
// the emitter like any other packet. A bare Aedes (none of Threadline's hooks) and a real
// MQTT.js client over TCP.
import { EventEmitter, once } from 'node:events'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Aedes, Client, PublishPacket } from 'aedes'
import mqtt from 'mqtt'
import { dropRawChatPackets } from '../../../broker/patches/drop-raw-chat-packets.js'
import { listenBareAedes } from '../../helpers/bare-aedes.js'
import { withTimeout } from '../../helpers/wait.js'

interface Teardownable { teardown(fn: () => unknown): void }
type Done = (err?: Error | null) => void
type Publish = (packet: PublishPacket, client: unknown, done?: Done) => void

interface PublishCall {
  packet: PublishPacket
  client: unknown
  /** settles when broker.publish calls back: by then the emitter has delivered the packet */
  done: Promise<void>
}

interface Bare {
  broker: Aedes
  url: string
  /** what happened, in order: `authorize <topic>` and `publish <topic>` */
  steps: string[]
  /** the client each topic's authorizePublish was asked about */
  authorized: Map<string, Client>
}

async function bareBroker (t: Teardownable): Promise<Bare> {
  const steps: string[] = []
  const authorized = new Map<string, Client>()
  const { broker, url } = await listenBareAedes(t, {
    authorizePublish (client, packet, callback) {
      steps.push(`authorize ${packet.topic}`)
      if (client !== null) authorized.set(packet.topic, client)
      callback(null)
    }
  })
  return { broker, url, steps, authorized }
}

/** Records every broker.publish call (the patched one too, when the patch came first). */
function watchPublish (bare: Bare): PublishCall[] {
  const calls: PublishCall[] = []
  const target = bare.broker as unknown as { publish: Publish }
  const publish = target.publish.bind(bare.broker)
  target.publish = (packet, client, done) => {
    if (typeof client === 'function') { // publish(packet, done), as the server calls it
      done = client as Done
      client = null
    }
    bare.steps.push(`publish ${packet.topic}`)
    let settle: () => void = () => {}
    calls.push({ packet, client, done: new Promise<void>(resolve => { settle = resolve }) })
    publish(packet, client, (err) => {
      settle()
      done?.(err)
    })
  }
  return calls
}

/** What the emitter delivers on `filter`, by topic; `routed.once(topic)` awaits one. */
async function routedOn (broker: Aedes, filter: string): Promise<EventEmitter & { topics: string[] }> {
  const routed = Object.assign(new EventEmitter(), { topics: [] as string[] })
  const mq = (broker as unknown as { mq: { on(topic: string, fn: (packet: PublishPacket, cb: () => void) => void, done: () => void): void } }).mq
  await new Promise<void>(resolve => mq.on(filter, (packet, cb) => {
    routed.topics.push(packet.topic)
    routed.emit(packet.topic, packet)
    cb()
  }, resolve))
  return routed
}

async function connect (t: Teardownable, url: string): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(url, { clientId: `drop-raw-${randomUUID()}`, reconnectPeriod: 0 })
  t.teardown(() => client.endAsync(true))
  return client
}

t.test('Aedes hands an authorized client PUBLISH to broker.publish with its client, and it is routed (what the patch stops)', async (t) => {
  const bare = await bareBroker(t)
  const calls = watchPublish(bare)
  const routed = await routedOn(bare.broker, 'conv/+/send')
  const client = await connect(t, bare.url)
  for (const qos of [0, 1, 2] as const) {
    const topic = `conv/${randomUUID()}/send`
    const arrived = once(routed, topic)
    await client.publishAsync(topic, `qos ${qos}`, { qos })
    const [packet] = await withTimeout(arrived, `the emitter to route the QoS ${qos} packet`) as [PublishPacket]
    t.equal(String(packet.payload), `qos ${qos}`, `QoS ${qos}: the raw packet reaches the emitter`)
    t.same(bare.steps.filter(step => step.endsWith(topic)), [`authorize ${topic}`, `publish ${topic}`], `QoS ${qos}: broker.publish after authorizePublish`)
    const call = calls.find(c => c.packet.topic === topic)
    t.ok(call?.client !== undefined && call.client === bare.authorized.get(topic), `QoS ${qos}: called with the client that authorizePublish saw`)
  }
})

t.test('patched, a client\'s chat-namespace packet is acknowledged but not routed; open topics and the server\'s own packets are', async (t) => {
  const bare = await bareBroker(t)
  dropRawChatPackets(bare.broker)
  const calls = watchPublish(bare)
  const routed = await routedOn(bare.broker, '#')
  const client = await connect(t, bare.url)

  const chat = `conv/${randomUUID()}/send`
  await client.publishAsync(chat, 'raw', { qos: 1 }) // resolves on PUBACK
  const call = calls.find(c => c.packet.topic === chat)
  t.ok(call !== undefined, 'broker.publish was asked to route it')
  await withTimeout(call!.done, 'broker.publish to call back for the chat packet')
  t.notOk(routed.topics.includes(chat), 'and called back without routing it')

  const open = `open/${randomUUID()}`
  const openArrived = once(routed, open)
  await client.publishAsync(open, 'open', { qos: 1 })
  await withTimeout(openArrived, 'the open topic to be routed')
  t.pass('a client packet to an open topic is routed')

  const events = `conv/${randomUUID()}/events`
  const eventsArrived = once(routed, events)
  await new Promise<void>((resolve, reject) => bare.broker.publish({ cmd: 'publish', topic: events, payload: Buffer.from('{}'), qos: 1, retain: false, dup: false }, err => (err ? reject(err) : resolve())))
  await withTimeout(eventsArrived, 'the server\'s chat packet to be routed')
  t.pass('a chat packet the server publishes (no client) is routed')
  t.notOk(routed.topics.includes(chat), 'the raw chat packet never was')
})
