// A Redis that stops answering without closing anything (a blocked or stopped server)
// must not stop sends: a send needs only PostgreSQL. Node B reaches Redis through a proxy
// that holds every byte while "hung"; node A reaches it directly. While Redis hangs,
// clients on B keep sending and receiving, /readyz on B says redis is down in bounded
// time, and a new CONNECT to B is answered in bounded time; when Redis answers again,
// deliveries between A and B resume without a restart, and nothing is delivered twice.
import t from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { redisBehindProxy } from '../helpers/cluster.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { connectUser, startNode, token } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'

interface Envelope { t: string, conv_id: string, seq: number, client_msg_id: string }

/** more sends than the fan-out in-flight bound (4096 publishes; 3 per send here: two inboxes and the conversation) let through a hung bus */
const SENDS = 3000
const WINDOW = 250

function within<T> (ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  return Promise.race([work, late]).finally(() => clearTimeout(timer))
}

async function readyz (port: number): Promise<{ status: number, body: string, ms: number }> {
  const started = Date.now()
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(15_000) })
  return { status: res.status, body: await res.text(), ms: Date.now() - started }
}

/** Keeps sending fresh messages from `from` until one arrives at `to` (the bus may need a moment to come back). */
async function untilDelivered (from: MqttClient, to: MqttClient, conv: string, tag: string, ms: number, onTopic?: string): Promise<number> {
  const deadline = Date.now() + ms
  let attempt = 0
  const arrived = new Set<string>()
  const onMessage = (topic: string, payload: Buffer): void => {
    if (onTopic !== undefined && topic !== onTopic) return
    const m = JSON.parse(payload.toString()) as Envelope
    if (m.client_msg_id?.startsWith(tag)) arrived.add(m.client_msg_id)
  }
  to.on('message', onMessage)
  try {
    while (arrived.size === 0) {
      if (Date.now() > deadline) throw new Error(`${tag}: nothing arrived within ${ms} ms (${attempt} sends)`)
      await from.publishAsync(`conv/${conv}/send`, text(`${tag}-${attempt++}`, tag), { qos: 1 })
      await new Promise(resolve => setTimeout(resolve, 250))
    }
    return attempt
  } finally {
    to.off('message', onMessage)
  }
}

t.test('a hung Redis stops neither sends nor local delivery, and the cluster recovers by itself', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const env = { THREADLINE_SEND_RATE: '1000000', THREADLINE_SEND_BURST: '1000000', THREADLINE_REDIS_TIMEOUT_MS: '500' }
  const a = await startNode(t, { databaseUrl: db.url, env: { ...env, REDIS_URL: redisUrl } })
  const b = await startNode(t, { databaseUrl: db.url, env: { ...env, REDIS_URL: proxy.urlFor(redisUrl) } })

  const [alice, bob, carol, dave] = [userId('alice'), userId('bob'), userId('carol'), userId('dave')]
  const local = await createConversation(b, [alice, bob])
  const across = await createConversation(a, [carol, dave])
  const alicePhone = await connectUser(t, b, alice, 'phone')
  const bobPhone = await connectUser(t, b, bob, 'phone')
  const carolPhone = await connectUser(t, a, carol, 'phone')
  const davePhone = await connectUser(t, b, dave, 'phone')
  await bobPhone.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  await carolPhone.subscribeAsync(`user/${carol}/inbox`, { qos: 1 })
  await davePhone.subscribeAsync({ [`user/${dave}/inbox`]: { qos: 1 }, [`conv/${across}/events`]: { qos: 1 } })
  await within(10_000, 'cross-node delivery before the hang', untilDelivered(carolPhone, davePhone, across, 'before', 10_000))
  t.equal((await readyz(b.httpPort)).status, 200, 'B is ready before the hang')

  const atBob: string[] = []
  bobPhone.on('message', (_topic, payload) => {
    const m = JSON.parse(payload.toString()) as Envelope
    if (m.conv_id === local) atBob.push(m.client_msg_id)
  })

  // — Redis stops answering B; its connections stay open —
  proxy.hang()

  const probe = await readyz(b.httpPort)
  t.equal(probe.status, 503, '/readyz answers 503 while Redis hangs')
  t.match(probe.body, /redis/, 'and names redis')
  t.ok(probe.ms < 5000, `within a bounded time (${probe.ms} ms)`)

  const allDelivered = within(60_000, `bob's deliveries during the hang (${atBob.length} of ${SENDS})`, new Promise<void>((resolve) => {
    const check = (): void => { if (new Set(atBob).size >= SENDS) { bobPhone.off('message', check); resolve() } }
    bobPhone.on('message', check)
  }))
  allDelivered.catch(() => {}) // awaited below; a rejection before then is not unhandled
  let acked = 0
  await within(60_000, `PUBACKs during the hang (${SENDS} sends)`, (async () => {
    for (let i = 0; i < SENDS; i += WINDOW) {
      const batch = []
      for (let j = i; j < Math.min(i + WINDOW, SENDS); j++) {
        batch.push(alicePhone.publishAsync(`conv/${local}/send`, text(`m${j}`, `hung ${j}`), { qos: 1 }).then(() => { acked++ }))
      }
      await Promise.all(batch)
    }
  })().catch((err: Error) => { throw new Error(`${err.message}; ${acked} PUBACKed`) }))
  t.equal(acked, SENDS, `all ${SENDS} sends are PUBACKed while Redis hangs`)
  await allDelivered
  t.equal(new Set(atBob).size, SENDS, 'and all of them reach bob on the same node')
  const { rows } = { rows: await b.store.query<{ n: string }>('SELECT count(*)::text AS n FROM events WHERE conv_id = $1', [local]) }
  t.equal(Number(rows[0]?.n), SENDS, 'every send is committed')

  // a new session cannot be set up without Redis: it is answered, not left hanging
  const started = Date.now()
  const outcome = await within(15_000, 'a CONNECT during the hang', new Promise<string>((resolve) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${b.mqttPort}`, {
      clientId: `${alice}:tablet`, username: alice, password: token(b, alice), protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 60_000
    })
    t.teardown(() => client.endAsync(true))
    client.once('connect', () => resolve('accepted'))
    client.once('error', (err) => resolve(`refused: ${err.message}`))
    client.once('close', () => resolve('closed'))
  }))
  t.not(outcome, 'accepted', `a CONNECT during the hang is refused or closed (${outcome}, ${Date.now() - started} ms)`)
  t.equal((await fetch(`http://127.0.0.1:${b.httpPort}/healthz`)).status, 200, 'B stays up')

  // — Redis answers again —
  proxy.resume()
  await within(20_000, '/readyz back to 200', (async () => {
    while ((await readyz(b.httpPort)).status !== 200) await new Promise(resolve => setTimeout(resolve, 200))
  })())
  t.pass('/readyz answers 200 again')
  await within(20_000, 'A → B after the hang', untilDelivered(carolPhone, davePhone, across, 'a-to-b', 20_000))
  t.pass('a send on A reaches B again without a restart')
  await within(20_000, 'B → A after the hang', untilDelivered(davePhone, carolPhone, across, 'b-to-a', 20_000))
  t.pass('a send on B reaches A again without a restart')
  await within(20_000, 'conversation events on B after the hang', untilDelivered(carolPhone, davePhone, across, 'events', 20_000, `conv/${across}/events`))
  t.notOk(b.membership.stale, 'B\'s membership cache is trusted again, and conversation topics flow on B')
  t.equal(atBob.length, SENDS, 'nothing sent during the hang was delivered twice on B once Redis came back')
})
