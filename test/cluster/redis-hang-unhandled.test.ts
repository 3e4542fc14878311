// A node must survive a Redis that hangs and recovers while it is busy: every Redis
// command has a deadline, and a command that times out with nobody listening for its
// failure is an unhandled rejection, which ends a Node process (seen once in a reconnect
// storm: "Command timed out" killing the node). Under steady load — CONNECTs with and
// without a persistent session and with wills, SUBSCRIBEs, sends (some rate-limited),
// presence, long-polls, sessions expiring — Redis hangs and answers again several times,
// and finally the node is shut down while Redis hangs; the test process records every
// unhandled rejection and fails on any.
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import mqtt from 'mqtt'
import { redisBehindProxy } from '../helpers/cluster.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { LongPollClient } from '../helpers/longpoll.js'
import { startNode, token } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { unhandledRejections } from '../helpers/unhandled.js'

const TIMEOUT_MS = 250
const WORKERS = 12
const POLLERS = 3
const CYCLES = 4
const HANG_MS = 1500
const FLOW_MS = 1500

/** Whatever `work` does, settles within `ms` and never rejects: a failed operation during a hang is expected. */
async function attempt (ms: number, work: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>(resolve => { timer = setTimeout(() => resolve(false), ms) })
  try {
    return await Promise.race([work().then(() => true, () => false), late])
  } finally {
    clearTimeout(timer)
  }
}

t.test('no unhandled rejection while Redis hangs and recovers under load, nor at a shutdown during a hang', async (t) => {
  const unhandled = unhandledRejections(t)
  const db = await createDatabase()
  t.teardown(db.drop)
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const node = await startNode(t, {
    databaseUrl: db.url,
    env: {
      REDIS_URL: proxy.urlFor(redisUrl),
      THREADLINE_REDIS_TIMEOUT_MS: String(TIMEOUT_MS),
      // sessions expire while the test runs (swept every 500 ms)
      THREADLINE_SESSION_EXPIRY_S: '1',
      // a few sends per second and user pass, the rest are refused by the limiter
      THREADLINE_SEND_RATE: '5',
      THREADLINE_SEND_BURST: '5',
      // wills are allowed on integrators' own topics only
      THREADLINE_OPEN_TOPICS: 'authenticated'
    }
  })

  const users = Array.from({ length: WORKERS }, (_, i) => userId(`u${i}`))
  const convs: string[] = []
  for (let i = 0; i < WORKERS; i += 2) convs.push(await createConversation(node, [users[i]!, users[i + 1]!]))
  const pollers = users.slice(0, POLLERS).map(u => new LongPollClient(node, u))
  for (const p of pollers) await p.open({ device: 'browser', user_ids: users })

  const load = { running: true }
  const done = { connects: 0, sends: 0, polls: 0 }
  const worker = async (i: number): Promise<void> => {
    const user = users[i]!
    const conv = convs[Math.floor(i / 2)]!
    for (let round = 0; load.running; round++) {
      const client = mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, {
        clientId: `${user}:d${round % 3}`,
        username: user,
        password: token(node, user),
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 3000,
        clean: round % 2 === 0,
        will: { topic: `open/${user}/status`, payload: Buffer.from('gone'), qos: 1, retain: false }
      })
      client.on('error', () => {})
      try {
        if (!await attempt(3000, () => new Promise((resolve, reject) => { client.once('connect', resolve); client.once('close', reject) }))) continue
        done.connects++
        await attempt(2000, () => client.subscribeAsync({ [`user/${user}/inbox`]: { qos: 1 }, [`presence/${users[(i + 1) % WORKERS]}`]: { qos: 0 } }))
        await attempt(1000, () => client.publishAsync(`user/${user}/presence`, JSON.stringify({ state: round % 2 === 0 ? 'active' : 'away' }), { qos: 0 }))
        const sends = await Promise.all(Array.from({ length: 4 }, (_, k) =>
          attempt(2000, () => client.publishAsync(`conv/${conv}/send`, text(`${user}-${round}-${k}`, 'hi'), { qos: 1 }))))
        done.sends += sends.filter(Boolean).length
        await attempt(500, () => client.publishAsync(`open/${user}/status`, 'here', { qos: 1 }))
      } finally {
        // every other round drops the connection unannounced: the will is published
        await attempt(1000, () => client.endAsync(round % 4 === 1))
      }
    }
  }
  const poller = async (p: LongPollClient): Promise<void> => {
    while (load.running) {
      if (await attempt(3000, () => p.poll(1))) done.polls++
      else await attempt(3000, () => p.open({ device: 'browser', user_ids: users }))
    }
  }
  const loaded = Promise.all([...users.map((_u, i) => worker(i)), ...pollers.map(poller)])

  await delay(FLOW_MS)
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    proxy.hang()
    await delay(HANG_MS)
    proxy.resume()
    await delay(FLOW_MS)
  }
  const before = { ...done }
  await delay(FLOW_MS)
  load.running = false
  await loaded
  t.ok(done.connects > WORKERS && done.sends > 0 && done.polls > 0, `the load ran (${JSON.stringify(done)})`)
  t.ok(done.connects > before.connects && done.sends > before.sends, 'and the node still served it after the last hang')

  // an operator restarts a node whose Redis hangs
  proxy.hang()
  await delay(TIMEOUT_MS * 2)
  await node.close()
  // commands sent before the close have timed out by now, answered or not
  await delay(TIMEOUT_MS * 2)
  proxy.resume()
  t.same(unhandled.reasons.map(r => (r as Error).stack ?? String(r)), [], 'no unhandled rejection')
})
