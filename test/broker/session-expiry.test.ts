// DESIGN.md §2: a persistent session whose device stays away longer than
// THREADLINE_SESSION_EXPIRY_S is removed (subscriptions, offline queue, inflight); one
// within it, or connected all along, stays. In memory, and with Redis across two nodes.
import t from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { Redis } from 'ioredis'
import { ConfigError, loadConfig } from '../../broker/config.js'
import type { Threadline } from '../../broker/server.js'
import { outgoingKey } from '../../broker/patches/redis-outgoing.js'
import { isolatedRedisUrl, startCluster } from '../helpers/cluster.js'
import { createDatabase } from '../helpers/pg-database.js'
import { spawnServer } from '../helpers/spawn-node.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { collect, connectUser, startNode, tempDir, TEST_SECRET, token } from '../helpers/node.js'
import { published, queuedTopics, sendText, storedTopics } from '../helpers/access.js'

const EXPIRY_S = 3

interface Teardownable { teardown(fn: () => unknown): void }

function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

interface Reconnected {
  client: MqttClient
  sessionPresent: boolean
  /** client_msg_ids of what arrived so far */
  got: string[]
  arrived(clientMsgId: string): Promise<void>
}

/** A clean=false CONNECT that records messages from before the CONNACK on (the queue follows it at once). */
async function reconnect (t: Teardownable, node: Threadline, user: string, device: string): Promise<Reconnected> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, {
    clientId: `${user}:${device}`, username: user, password: token(node, user), protocolVersion: 4, reconnectPeriod: 0, clean: false
  })
  t.teardown(() => client.endAsync(true))
  const got: string[] = []
  client.on('message', (_topic, payload) => { got.push((JSON.parse(payload.toString()) as { client_msg_id?: string }).client_msg_id ?? '') })
  const arrived = (id: string): Promise<void> => within(new Promise<void>((resolve) => {
    const check = (): void => {
      if (!got.includes(id)) return
      client.off('message', check)
      resolve()
    }
    client.on('message', check)
    check()
  }), 10_000, `${id} to arrive at ${user}:${device}`)
  const sessionPresent = await within(new Promise<boolean>((resolve, reject) => {
    client.once('connect', (connack) => resolve(connack.sessionPresent))
    client.once('error', reject)
  }), 10_000, `${user}:${device} to reconnect`)
  return { client, sessionPresent, got, arrived }
}

const events = (node: Threadline): NodeJS.EventEmitter => node.broker as unknown as NodeJS.EventEmitter

t.test('THREADLINE_SESSION_EXPIRY_S: 7 days by default, 1 s upwards, anything else stops startup naming it', async (t) => {
  t.equal(loadConfig({}).sessionExpiryS, 604_800)
  t.equal(loadConfig({ THREADLINE_SESSION_EXPIRY_S: '1' }).sessionExpiryS, 1)
  for (const bad of ['0', '-5', '1.5', '7d', '315360001']) {
    let err: unknown = null
    try {
      loadConfig({ THREADLINE_SESSION_EXPIRY_S: bad })
    } catch (e) {
      err = e
    }
    t.ok(err instanceof ConfigError && err.variable === 'THREADLINE_SESSION_EXPIRY_S', `${bad} is refused: ${(err as Error | null)?.message}`)
  }
})

for (const redis of [false, true]) {
  t.test(`with ${redis ? 'Redis, across two nodes' : 'in-memory sessions'}`, async (t) => {
    const env = { THREADLINE_SESSION_EXPIRY_S: String(EXPIRY_S) }
    let nodes: Threadline[]
    let redisUrl: string | undefined
    if (redis) {
      const cluster = await startCluster(t, 2, env)
      nodes = cluster.nodes
      redisUrl = cluster.redisUrl
    } else {
      nodes = [await startNode(t, { env })]
    }
    const home = nodes[0] as Threadline
    const other = nodes.at(-1) as Threadline

    t.test('a session idle past the expiry is gone; one connected meanwhile, then briefly away, stays', async (t) => {
      const [alice, bob] = [userId('alice'), userId('bob')]
      const inbox = `user/${bob}/inbox`
      const conv = await createConversation(home, [alice, bob])
      const sender = await connectUser(t, home, alice, 'phone')
      const old = await connectUser(t, home, bob, 'old', { clean: false })
      await old.subscribeAsync(inbox, { qos: 1 })
      const kept = await connectUser(t, home, bob, 'kept', { clean: false })
      await kept.subscribeAsync(inbox, { qos: 1 })

      // (other test files' sessions may share this Redis database: only bob's count)
      const expired: string[] = []
      const oldExpired = within(new Promise<void>((resolve) => {
        for (const node of nodes) {
          events(node).on('sessionExpired', (clientId: string) => {
            if (clientId.startsWith(`${bob}:`)) expired.push(clientId)
            if (clientId === `${bob}:old`) resolve()
          })
        }
      }), EXPIRY_S * 1000 * 3 + 5_000, `${bob}:old to expire`)

      await old.endAsync()
      const queuedWhileAway = published(home, inbox)
      const liveOnKept = collect(kept, 1)
      await sendText(sender, conv, 'while-old-away')
      await queuedWhileAway
      await within(liveOnKept, 10_000, 'live delivery to the connected device')
      let packetKeys: string[] = []
      if (redisUrl !== undefined) {
        const db = new Redis(redisUrl)
        t.teardown(() => db.disconnect())
        packetKeys = await db.lrange(outgoingKey(`${bob}:old`), 0, -1)
        t.equal(packetKeys.length, 1, 'the away session has one packet queued in Redis')
      } else {
        t.same(await queuedTopics(home, `${bob}:old`), [inbox], 'the away session has one packet queued')
      }

      await oldExpired
      t.same(expired, [`${bob}:old`], 'only the idle session expired, once, on one node: connected for longer than the expiry is not idle')

      // now the other device goes away for a moment, well within the expiry
      await kept.endAsync()
      const queuedForKept = published(home, inbox)
      await sendText(sender, conv, 'while-kept-away')
      await queuedForKept

      const oldBack = await reconnect(t, other, bob, 'old')
      t.equal(oldBack.sessionPresent, false, 'the expired session is not present, even on another node')
      t.same(await storedTopics(other, `${bob}:old`), [], 'no subscriptions left')
      t.same(await queuedTopics(other, `${bob}:old`), [], 'no queued messages left')

      const keptBack = await reconnect(t, other, bob, 'kept')
      t.equal(keptBack.sessionPresent, true, 'the session away for less than the expiry is present')
      await keptBack.arrived('while-kept-away')
      t.same(keptBack.got, ['while-kept-away'], 'and gets what was queued for it')
      // the kept session's replay is done; the old one, reconnected earlier, had its chance
      t.same(oldBack.got, [], 'the expired session got nothing queued back')
      t.same(expired, [`${bob}:old`], 'no node removed a session twice, nor the kept one')

      if (redisUrl !== undefined) {
        const db = new Redis(redisUrl)
        t.teardown(() => db.disconnect())
        t.equal(await db.exists(outgoingKey(`${bob}:old`)), 0, 'its queue list is gone from Redis')
        t.equal(await db.exists(`client:${encodeURIComponent(`${bob}:old`)}`), 0, 'its subscriptions are gone from Redis')
        // the packet was queued for the expired session only (the kept one was connected)
        for (const key of packetKeys) t.equal(await db.exists(key, `${key}:offlineCount`), 0, `${key} was released, not left behind`)
      }
    })
  })
}

t.test('with Redis, a session whose node was killed while its device was connected still expires', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const redisUrl = await isolatedRedisUrl(t)
  const env = { REDIS_URL: redisUrl, THREADLINE_SESSION_EXPIRY_S: '2' }
  const survivor = await startNode(t, { databaseUrl: db.url, env })
  const doomed = await spawnServer(t, {
    env: { ...env, DATABASE_URL: db.url, THREADLINE_JWT_SECRET: TEST_SECRET, THREADLINE_DATA_DIR: await tempDir(t) }
  })
  const bob = userId('bob')
  const expired = within(new Promise<void>((resolve) => {
    events(survivor).on('sessionExpired', (clientId: string) => { if (clientId === `${bob}:phone`) resolve() })
  }), 30_000, `${bob}:phone to expire after its node died`)

  const phone = await mqtt.connectAsync(`mqtt://127.0.0.1:${doomed.mqttPort}`, {
    clientId: `${bob}:phone`, username: bob, password: token(survivor, bob), protocolVersion: 4, reconnectPeriod: 0, clean: false
  })
  phone.on('error', () => {}) // the socket dies under it
  t.teardown(() => phone.endAsync(true))
  await phone.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  t.same(await storedTopics(survivor, `${bob}:phone`), [`user/${bob}/inbox`], 'the session is in the shared state')

  await doomed.stop('SIGKILL') // no disconnect is ever recorded for the phone
  await expired
  const back = await reconnect(t, survivor, bob, 'phone')
  t.equal(back.sessionPresent, false, 'the orphaned session is gone')
  t.same(await storedTopics(survivor, `${bob}:phone`), [], 'and so are its subscriptions')
})
