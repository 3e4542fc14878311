// PluginRegistry (broker/registry.ts): Aedes has one slot per hook; the registry keeps a
// list per hook, checks dependencies and composes each list into the one callback Aedes
// takes. Real Aedes on a loopback port, real MQTT.js clients, plugins made for the test.
import type net from 'node:net'
import t from 'tap'
import { Aedes, type Client, type PublishPacket } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import { loadConfig } from '../../broker/config.js'
import { listenTcp } from '../../broker/listeners.js'
import { ProxyTrust } from '../../broker/client-address.js'
import { SocketBudget } from '../../broker/socket-budget.js'
import { Telemetry } from '../../core/telemetry.js'
import { createLogger } from '../../broker/logger.js'
import { ANSWERED, ConnectRefusal, type PluginContext, type ThreadlinePlugin } from '../../broker/plugin.js'
import { PluginRegistry } from '../../broker/registry.js'
import { Services } from '../../core/services.js'
import { closed, suback } from '../helpers/access.js'
import { withTimeout } from '../helpers/wait.js'

interface Teardownable { teardown(fn: () => unknown): void }

/** An Aedes broker with `plugins` installed through the registry, listening on 127.0.0.1:0. */
async function brokerWith (t: Teardownable, plugins: ThreadlinePlugin[]): Promise<{ broker: Aedes, url: string, registry: PluginRegistry }> {
  const broker = await Aedes.createBroker()
  // the registry reads only the config and logger of its context here; the rest (and
  // the send path's committed batches, test/plugins/) belongs to real nodes
  const ctx = { config: loadConfig({}), log: createLogger('silent'), services: new Services() } as unknown as PluginContext
  const registry = new PluginRegistry()
  for (const plugin of plugins) registry.register(plugin)
  await registry.start(broker, ctx, { sends: { onCommitted: () => () => {} } })
  const config = loadConfig({})
  const telemetry = new Telemetry()
  const entry = { budget: new SocketBudget(1000, telemetry, createLogger('silent')), trust: new ProxyTrust([]), connectTimeoutMs: config.connectTimeoutMs, telemetry }
  const server: net.Server = await listenTcp(broker, 0, '127.0.0.1', { maxPayloadBytes: config.maxPayloadBytes, clientBufferBytes: config.clientBufferBytes }, entry, createLogger('silent'))
  t.teardown(async () => {
    await registry.stop()
    await new Promise<void>(resolve => server.close(() => resolve()))
    await new Promise<void>(resolve => broker.close(() => resolve()))
  })
  return { broker, url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`, registry }
}

async function connect (t: Teardownable, url: string, clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { clientId, protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => client.endAsync(true))
  return client
}

/** CONNACK's return code of a refused CONNECT. */
function refusal (t: Teardownable, url: string, clientId: string): Promise<number> {
  const client = mqtt.connect(url, { clientId, protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => client.endAsync(true))
  return withTimeout(new Promise((resolve, reject) => {
    client.once('connect', () => reject(new Error('accepted')))
    client.once('error', (err) => { resolve((err as { code?: number }).code ?? -1) })
  }), `a refusing CONNACK for ${clientId}`)
}

const plugin = (name: string, extra: Partial<ThreadlinePlugin> = {}): ThreadlinePlugin => ({ name, ...extra })

t.test('a plugin needs its dependencies registered before it, and a name of its own', async (t) => {
  const registry = new PluginRegistry()
  t.throws(() => registry.register(plugin('acl', { dependencies: ['auth'] })), /plugin acl needs auth: register auth before it/)
  registry.register(plugin('auth')).register(plugin('acl', { dependencies: ['auth'] }))
  t.same(registry.names, ['auth', 'acl'], 'registered in order')
  t.throws(() => registry.register(plugin('auth')), /plugin auth registered twice/)
  t.same(registry.names, ['auth', 'acl'], 'a refused plugin is not kept')
})

t.test('setups run in order, and teardowns in reverse at stop', async (t) => {
  const events: string[] = []
  const step = (name: string): ThreadlinePlugin => plugin(name, {
    setup: async () => {
      events.push(`setup ${name}`)
      return () => { events.push(`teardown ${name}`) }
    }
  })
  const { registry } = await brokerWith(t, [step('a'), step('b'), step('c')])
  await registry.stop()
  t.same(events, ['setup a', 'setup b', 'setup c', 'teardown c', 'teardown b', 'teardown a'])
})

t.test('authenticate: the first refusal wins and later hooks never run', async (t) => {
  const seen: string[] = []
  const { url } = await brokerWith(t, [
    plugin('first', { hooks: () => ({ authenticate: (client) => { seen.push(`first ${client.id}`); if (client.id === 'refused') throw new ConnectRefusal(4, 'no') } }) }),
    plugin('second', { hooks: () => ({ authenticate: async (client) => { seen.push(`second ${client.id}`); if (client.id === 'late') throw new ConnectRefusal(5, 'not you') } }) })
  ])
  t.equal(await refusal(t, url, 'refused'), 4, 'the first hook\'s code')
  t.equal(await refusal(t, url, 'late'), 5, 'an async refusal of a later hook')
  await connect(t, url, 'welcome')
  t.same(seen, ['first refused', 'first late', 'second late', 'first welcome', 'second welcome'])
})

t.test('authenticate: an error that is no refusal answers CONNACK 3 (server unavailable)', async (t) => {
  const { url } = await brokerWith(t, [plugin('broken', { hooks: () => ({ authenticate: async () => { throw new Error('store down') } }) })])
  t.equal(await refusal(t, url, 'anyone'), 3)
})

t.test('authorizePublish: PUBACKs keep the PUBLISH order when an async answer precedes a sync one', async (t) => {
  let releaseSlow: () => void = () => {}
  const slowHeld = new Promise<void>(resolve => { releaseSlow = resolve })
  const { url } = await brokerWith(t, [plugin('order', {
    hooks: () => ({
      authorizePublish: (_client: Client, packet: PublishPacket) => {
        if (packet.topic === 'slow') return slowHeld
        // the fast one is decided at once, while the slow one still waits
        if (packet.topic === 'fast') releaseSlowSoon()
      }
    })
  })])
  // released only after the fast one was answered, so a registry that acknowledged in
  // answer order would send fast's PUBACK first
  function releaseSlowSoon (): void { setImmediate(releaseSlow) }
  const client = await connect(t, url, 'orderly')
  const acks: number[] = []
  client.on('packetreceive', (p) => { if (p.cmd === 'puback') acks.push(p.messageId as number) })
  const slow = client.publishAsync('slow', 'a', { qos: 1 })
  const fast = client.publishAsync('fast', 'b', { qos: 1 })
  const [slowAck, fastAck] = await withTimeout(Promise.all([slow, fast]), 'both PUBACKs')
  t.same(acks, [slowAck?.messageId, fastAck?.messageId], 'the slow one\'s PUBACK first, as it was published first')
})

t.test('authorizePublish: a hook that awaits I/O can\'t reorder a client\'s packets for the hooks after it', async (t) => {
  // The limiter answers the second packet before the first (as a Redis round trip that
  // happened to come back out of order would): the hook behind it must still see 1, 2, 3.
  const held = new Map<string, () => void>()
  const arrived = { count: 0, wake: () => {} }
  const behind: string[] = []
  const { url } = await brokerWith(t, [
    plugin('limiter', {
      hooks: () => ({
        authorizePublish: (_c: Client, p: PublishPacket) => {
          arrived.count++
          arrived.wake()
          return new Promise<void>(resolve => { held.set(p.payload.toString(), resolve) })
        }
      })
    }),
    plugin('messages', { hooks: () => ({ authorizePublish: (_c: Client, p: PublishPacket) => { behind.push(p.payload.toString()) } }) })
  ])
  const client = await connect(t, url, 'pipelined')
  const acks = ['1', '2', '3'].map(n => client.publishAsync('limited', n, { qos: 1 }))
  await withTimeout(new Promise<void>(resolve => {
    arrived.wake = () => { if (arrived.count === 3) resolve() }
    arrived.wake()
  }), 'all three packets in the limiter')
  // release in the order 3, 2, 1
  for (const n of ['3', '2', '1']) held.get(n)?.()
  await withTimeout(Promise.all(acks), 'three PUBACKs')
  t.same(behind, ['1', '2', '3'], 'the hook behind the limiter saw arrival order')
})

t.test('authorizePublish: a hook that keeps a packet (a send waiting for its commit) does not hold the next one back', async (t) => {
  const releases: Array<() => void> = []
  const entered: string[] = []
  const bothIn = { wake: () => {} }
  const { url } = await brokerWith(t, [plugin('committer', {
    hooks: () => ({
      authorizePublish: (_c: Client, p: PublishPacket) => {
        entered.push(p.payload.toString())
        if (entered.length === 2) bothIn.wake()
        return new Promise<void>(resolve => { releases.push(resolve) })
      }
    })
  })])
  const client = await connect(t, url, 'batched')
  const acks = ['a', 'b'].map(n => client.publishAsync('kept', n, { qos: 1 }))
  // both packets are inside the hook at once: they can be committed in one batch
  await withTimeout(new Promise<void>(resolve => { bothIn.wake = resolve }), 'the second packet entering while the first is kept')
  t.same(entered, ['a', 'b'])
  for (const release of releases) release()
  await withTimeout(Promise.all(acks), 'two PUBACKs')
})

t.test('authorizePublish: a hook that answers ANSWERED acknowledges the packet, later hooks never see it, and order holds', async (t) => {
  // the limiter answers "slow" (refused after an await) and "quick" (refused at once)
  // itself; "kept" passes it and waits in the hook behind, as a send waits for its commit
  let releaseSlow: () => void = () => {}
  const slowHeld = new Promise<void>(resolve => { releaseSlow = resolve })
  const behind: string[] = []
  const releases: Array<() => void> = []
  let bothBehind: () => void = () => {}
  const twoBehind = new Promise<void>(resolve => { bothBehind = resolve })
  const { url } = await brokerWith(t, [
    plugin('limiter', {
      hooks: () => ({
        authorizePublish: (_c: Client, p: PublishPacket) => {
          if (p.topic === 'slow') return slowHeld.then(() => ANSWERED)
          if (p.topic === 'quick') return ANSWERED
        }
      })
    }),
    plugin('messages', {
      hooks: () => ({
        authorizePublish: (_c: Client, p: PublishPacket) => {
          behind.push(p.topic)
          if (behind.length === 2) bothBehind()
          if (p.topic === 'kept') return new Promise<void>(resolve => { releases.push(resolve) })
        }
      })
    })
  ])
  const client = await connect(t, url, 'answered')
  const acks: number[] = []
  client.on('packetreceive', (p) => { if (p.cmd === 'puback') acks.push(p.messageId as number) })
  const sent = ['slow', 'quick', 'kept', 'plain'].map(topic => client.publishAsync(topic, 'x', { qos: 1 }))
  // the packets behind "slow" wait for it before they enter the limiter
  setImmediate(releaseSlow)
  await withTimeout(twoBehind, 'kept and plain in the hook behind the limiter')
  for (const release of releases) release()
  const ids = (await withTimeout(Promise.all(sent), 'four PUBACKs')).map(p => p?.messageId)
  t.same(behind, ['kept', 'plain'], 'the hook behind never saw the answered packets')
  t.same(acks, ids, 'PUBACKs in PUBLISH order')
  t.ok(client.connected, 'the connection stays up')
})

t.test('authorizePublish: the first denial closes the connection and later hooks never see the packet', async (t) => {
  const later: string[] = []
  const { url } = await brokerWith(t, [
    plugin('deny', { hooks: () => ({ authorizePublish: (_c: Client, p: PublishPacket) => { if (p.topic === 'forbidden') throw new Error('no') } }) }),
    plugin('watch', { hooks: () => ({ authorizePublish: (_c: Client, p: PublishPacket) => { later.push(p.topic) } }) })
  ])
  const client = await connect(t, url, 'denied')
  await client.publishAsync('allowed', 'x', { qos: 1 })
  client.publish('forbidden', 'x', { qos: 1 })
  await closed(client)
  t.same(later, ['allowed'])
})

t.test('authorizePublish keeps Aedes\' protection of $SYS/', async (t) => {
  const seen: string[] = []
  const { url } = await brokerWith(t, [plugin('open', { hooks: () => ({ authorizePublish: (_c: Client, p: PublishPacket) => { seen.push(p.topic) } }) })])
  const client = await connect(t, url, 'sys')
  client.publish('$SYS/forged', 'x', { qos: 1 })
  await closed(client)
  t.same(seen, [], 'refused before any plugin hook')
})

t.test('authorizeSubscribe: hooks chain, a null refuses (SUBACK 0x80) and a failing hook refuses too', async (t) => {
  const seen: string[] = []
  const { url } = await brokerWith(t, [
    plugin('first', {
      hooks: () => ({
        authorizeSubscribe: (_c, sub) => {
          seen.push(`first ${sub.topic}`)
          if (sub.topic === 'refused') return null
          if (sub.topic === 'broken') throw new Error('boom')
          return sub.topic === 'downgraded' ? { ...sub, qos: 0 } : sub
        }
      })
    }),
    plugin('second', { hooks: () => ({ authorizeSubscribe: async (_c, sub) => { seen.push(`second ${sub.topic}:${sub.qos}`); return sub.topic === 'late' ? null : sub } }) })
  ])
  const client = await connect(t, url, 'subscriber')
  const granted = await suback(client, ['ok', 'refused', 'downgraded', 'late', 'broken'])
  t.same([0, 1, 3, 4].map(i => granted[i]), [1, 128, 128, 128], 'ok granted; refused, late and broken refused')
  t.ok(client.connected, 'the connection stays up')
  t.same(seen.filter(s => s.startsWith('second')).sort(), ['second downgraded:0', 'second late:1', 'second ok:1'],
    'later hooks see the subscription as changed, and never a refused one')
})

t.test('authorizeForward: hooks chain on every delivery and the first null withholds the packet', async (t) => {
  const seen: string[] = []
  const { url } = await brokerWith(t, [
    plugin('first', { hooks: () => ({ authorizeForward: (_c, p) => p.topic === 'hidden' ? null : { ...p, payload: Buffer.from(`${String(p.payload)}+first`) } }) }),
    plugin('second', { hooks: () => ({ authorizeForward: (_c, p) => { seen.push(p.topic); return { ...p, payload: Buffer.from(`${String(p.payload)}+second`) } } }) })
  ])
  const reader = await connect(t, url, 'reader')
  await reader.subscribeAsync(['shown', 'hidden', 'marker'], { qos: 1 })
  const writer = await connect(t, url, 'writer')
  const got: string[] = []
  reader.on('message', (topic, payload) => got.push(`${topic} ${String(payload)}`))
  // the hooks make the payloads non-JSON, so this wait is by topic alone
  const markerArrived = withTimeout(new Promise<void>(resolve => reader.on('message', (topic) => { if (topic === 'marker') resolve() })), 'the marker at the reader')
  await writer.publishAsync('shown', '"a"', { qos: 1 })
  await writer.publishAsync('hidden', '"b"', { qos: 1 })
  await writer.publishAsync('marker', '"c"', { qos: 1 })
  await markerArrived
  t.same(got, ['shown "a"+first+second', 'marker "c"+first+second'], 'the hidden packet never arrives; the others pass both hooks in order')
  t.notOk(seen.includes('hidden'), 'the second hook never sees a withheld packet')
})
