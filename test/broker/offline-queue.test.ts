// DESIGN.md §2: a persistent session's offline queue keeps the newest
// THREADLINE_OFFLINE_QUEUE_MAX events; the device sees the gap in seq and fills it from
// history. In memory and with Redis.
import t from 'tap'
import mqtt from 'mqtt'
import { Redis } from 'ioredis'
import type { Threadline } from '../../broker/server.js'
import { outgoingKey } from '../../broker/patches/redis-outgoing.js'
import { isolatedRedisUrl } from '../helpers/cluster.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { collect, connectUser, startNode, token } from '../helpers/node.js'
import { sendText } from '../helpers/access.js'

const CAP = 10
const SENT = 5 * CAP

interface Event { t: string, seq: number, client_msg_id: string }

function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function waitUntil (check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

for (const redis of [false, true]) {
  t.test(`with ${redis ? 'Redis' : 'in-memory'} sessions`, async (t) => {
    const redisUrl = redis ? await isolatedRedisUrl(t) : undefined
    const node: Threadline = await startNode(t, {
      env: {
        THREADLINE_OFFLINE_QUEUE_MAX: String(CAP),
        THREADLINE_SEND_RATE: '100000',
        THREADLINE_SEND_BURST: '100000',
        ...(redisUrl !== undefined ? { REDIS_URL: redisUrl } : {})
      }
    })

    t.test(`a session offline while ${SENT} events arrive gets the newest ${CAP}, and history has the rest`, async (t) => {
      const [alice, bob] = [userId('alice'), userId('bob')]
      const inbox = `user/${bob}/inbox`
      const conv = await createConversation(node, [alice, bob])
      const sender = await connectUser(t, node, alice, 'phone')
      const phone = await connectUser(t, node, bob, 'phone', { clean: false })
      await phone.subscribeAsync(inbox, { qos: 1 })
      await phone.endAsync()
      // a second device online all along: once it has every event, every enqueue for the
      // phone is done too (Aedes enqueues offline before it delivers)
      const tablet = await connectUser(t, node, bob, 'tablet')
      await tablet.subscribeAsync(inbox, { qos: 1 })
      const witnessed = collect<Event>(tablet, SENT, (topic, msg) => topic === inbox && msg.t === 'event')

      await Promise.all(range(1, SENT).map(i => sendText(sender, conv, `m${i}`)))
      await within(witnessed, 20_000, `the tablet to receive all ${SENT} events`)

      if (redisUrl !== undefined) {
        const db = new Redis(redisUrl)
        t.teardown(() => db.disconnect())
        // between replays the queue stays bounded in Redis too, not only what a reconnect reads
        await waitUntil(async () => await db.llen(outgoingKey(`${bob}:phone`)) <= CAP, 5_000, `the Redis queue to be trimmed to ${CAP}`)
        t.equal(await db.llen(outgoingKey(`${bob}:phone`)), CAP, 'Redis holds the cap, not every event')
      }

      // the recorder listens before the CONNACK: the queue follows it in the same read
      const back = mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, {
        clientId: `${bob}:phone`, username: bob, password: token(node, bob), protocolVersion: 4, reconnectPeriod: 0, clean: false
      })
      t.teardown(() => back.endAsync(true))
      const replayed = collect<Event>(back, CAP, (topic, msg) => topic === inbox && msg.t === 'event')
      const sessionPresent = await within(new Promise<boolean>((resolve, reject) => {
        back.once('connect', (connack) => resolve(connack.sessionPresent))
        back.once('error', reject)
      }), 10_000, 'the reconnect')
      t.ok(sessionPresent, 'the session itself is kept')
      const queued = await within(replayed, 10_000, `${CAP} queued events`)
      // anything queued beyond the cap would arrive before an event sent after the replay
      const next = collect<Event>(back, 1, (topic, msg) => topic === inbox && msg.t === 'event')
      await sendText(sender, conv, 'after')
      const [after] = await within(next, 10_000, 'the event sent after the reconnect')

      t.same(queued.map(e => e.seq), range(SENT - CAP + 1, SENT), 'the newest events, in order: the gap is visible by seq')
      t.match(after, { seq: SENT + 1, client_msg_id: 'after' }, 'then live delivery goes on with the next seq')

      const history = await node.app.inject({
        method: 'GET',
        url: `/v1/conversations/${conv}/events?after_seq=0&before_seq=${SENT - CAP + 1}&limit=200`,
        headers: { authorization: `Bearer ${token(node, bob)}` }
      })
      t.equal(history.statusCode, 200, 'history answers')
      const missed = (history.json() as { events: Event[] }).events
      t.same(missed.map(e => [e.seq, e.client_msg_id]), range(1, SENT - CAP).map(i => [i, `m${i}`]), 'the dropped ones are all in history')
    })
  })
}
