// broker/patches/redis-subscription-changes.ts: Aedes 1.2 calls addSubscriptions once per
// granted topic of a clean=false SUBSCRIBE, with the packet's own array each time, and
// aedes-persistence-redis 11.2 (BroadcastPersistence of aedes-persistence) settles each
// call when its broadcast comes back, one waiter per clientId + first topic. A bare Aedes
// on aedes-persistence-redis and a real Redis; its broadcasts are held and then let
// through in order, as a bus with latency (Redis) delivers them, so the waiters always
// collide, not only in the runs where the timing happens to fall that way.
import { EventEmitter, once } from 'node:events'
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { setImmediate as nextTurn } from 'node:timers/promises'
import t from 'tap'
import type { Aedes } from 'aedes'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { serializeSubscriptionChanges, type SubscriptionStore } from '../../../broker/patches/redis-subscription-changes.js'
import { listenBareAedes } from '../../helpers/bare-aedes.js'
import { isolatedRedisUrl } from '../../helpers/cluster.js'
import { withTimeout } from '../../helpers/wait.js'

interface Teardownable { teardown(fn: () => unknown): void }
interface AddCall { subs: Array<{ topic: string }>, settled: boolean }

const require = createRequire(import.meta.url)
const redisPersistence = require('aedes-persistence-redis') as (opts: object) => SubscriptionStore

/** Every addSubscriptions call, and whether the promise it returned has settled. */
function watchAdds (persistence: SubscriptionStore): AddCall[] {
  const calls: AddCall[] = []
  const add = persistence.addSubscriptions.bind(persistence)
  persistence.addSubscriptions = (client, subs) => {
    const call: AddCall = { subs: subs as AddCall['subs'], settled: false }
    calls.push(call)
    const reply = add(client, subs)
    reply.then(() => { call.settled = true }, () => { call.settled = true })
    return reply
  }
  return calls
}

interface Held { release(): Promise<void> }

/** Holds the persistence's subscription broadcasts ($SYS/sub/add) until released. */
function holdBroadcasts (broker: Aedes): { held: Held[], reached(n: number): Promise<void> } {
  const held: Held[] = []
  const events = new EventEmitter()
  type Publish = (packet: { topic: string }, ...rest: unknown[]) => void
  const target = broker as unknown as { publish: Publish }
  const publish = target.publish.bind(broker)
  target.publish = (packet, ...rest) => {
    if (packet.topic !== '$SYS/sub/add') return publish(packet, ...rest)
    // BroadcastPersistence publishes (packet, cb); cb is called once every listener has it
    const [cb] = rest as [(err?: Error) => void]
    held.push({
      release: () => new Promise<void>(resolve => publish(packet, (err?: Error) => { cb(err); resolve() }))
    })
    events.emit('held')
  }
  const reached = async (n: number): Promise<void> => {
    while (held.length < n) await once(events, 'held')
  }
  return { held, reached }
}

async function brokerOnRedis (t: Teardownable, patched: boolean): Promise<{ url: string, calls: AddCall[], broadcasts: ReturnType<typeof holdBroadcasts> }> {
  const conn = new Redis(await isolatedRedisUrl(t))
  t.teardown(() => conn.disconnect()) // after the broker has closed (teardowns run last-in, first-out)
  const persistence = redisPersistence({ conn })
  if (patched) serializeSubscriptionChanges(persistence)
  const calls = watchAdds(persistence)
  const { broker, url } = await listenBareAedes(t, { persistence })
  return { url, calls, broadcasts: holdBroadcasts(broker) }
}

async function persistentClient (t: Teardownable, url: string): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(url, { clientId: `multi-sub-${randomUUID()}`, clean: false, reconnectPeriod: 0 })
  t.teardown(() => client.endAsync(true))
  return client
}

const twoTopics = (): string[] => [`a/${randomUUID()}`, `b/${randomUUID()}`]

t.test('two granted topics in one clean=false SUBSCRIBE leave one addSubscriptions promise unsettled: no SUBACK (what the patch is for)', async (t) => {
  const { url, calls, broadcasts } = await brokerOnRedis(t, false)
  const client = await persistentClient(t, url)
  const topics = twoTopics()
  let subacked = false
  client.subscribe(topics, { qos: 1 }, () => { subacked = true })

  await withTimeout(broadcasts.reached(2), 'a broadcast from each addSubscriptions call')
  t.equal(calls.length, 2, 'Aedes calls addSubscriptions once per granted topic')
  t.equal(calls[0]?.subs, calls[1]?.subs, 'both times with the packet\'s own array')
  t.same(calls[0]?.subs.map(sub => sub.topic), topics, 'which holds both topics')

  for (const broadcast of broadcasts.held) await broadcast.release()
  await nextTurn() // BroadcastPersistence calls a waiter on process.nextTick
  t.same(calls.map(call => call.settled), [false, true],
    'every broadcast is back, and the first call never settles: the second call\'s waiter replaced the first\'s under their one key')
  t.notOk(subacked, 'so the SUBACK never comes')
})

t.test('patched, the two calls for one packet are one: both settle and the SUBACK comes', async (t) => {
  const { url, calls, broadcasts } = await brokerOnRedis(t, true)
  const client = await persistentClient(t, url)
  const topics = twoTopics()
  const suback = client.subscribeAsync(topics, { qos: 1 })

  await withTimeout(broadcasts.reached(1), 'the broadcast of the coalesced call')
  for (const broadcast of broadcasts.held) await broadcast.release()
  const granted = await withTimeout(suback, 'the SUBACK')
  t.same(granted.map(grant => grant.qos), [1, 1], 'both topics granted')
  t.equal(calls.length, 2, 'Aedes still calls twice')
  t.same(calls.map(call => call.settled), [true, true], 'both calls settled')
  t.equal(broadcasts.held.length, 1, 'with one broadcast between them')
})
