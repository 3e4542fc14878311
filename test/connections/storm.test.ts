// A reconnect storm: 5,000 authenticated persistent sessions on a node (PostgreSQL and
// Redis), two messages fanned out to all of them and not yet acknowledged by any device,
// the node restarted on the same ports, store and Redis, and all 5,000 devices reconnecting
// at once. Every one must get its session back (session present) and both messages again;
// the store must stay healthy. The node runs in a child process (its own core, its own
// files); the devices are raw sockets here. The figures (time, connects/s, PostgreSQL
// backends and transactions) are printed as TAP comments; docs/operations.md quotes them.
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import pg from 'pg'
import { createTokenService } from '../../core/tokens.js'
import { TEST_SECRET } from '../helpers/node.js'
import { adminUrl, createDatabase } from '../helpers/pg-database.js'
import { leaseRedisUrl } from '../helpers/redis-db.js'
import { connectPacket, framePackets, subscribePacket } from '../helpers/raw-mqtt.js'
import { spawnServer, type ServerProcess } from '../helpers/spawn-node.js'
import { waitFor } from '../helpers/wait.js'

const DEVICES = Number(process.env.STORM_DEVICES ?? 5000)
const WAIT_MS = 60_000
const GROUP = 250

/** One phone, written by hand: it can hold back its PUBACKs, which no MQTT library lets a test do. */
class Device {
  socket: net.Socket | null = null
  holdAcks = false
  /** client_msg_ids of the events that arrived, each time they did */
  readonly events: string[] = []
  memberships = 0
  connack: { returnCode: number, sessionPresent: boolean, ms: number } | null = null
  subacked = false
  errors = 0
  /** the code of the last socket error (ECONNRESET, …), for the failure report */
  lastError = ''

  constructor (readonly user: string) {}

  connect (port: number, password: string, started: number): void {
    this.connack = null
    this.errors = 0
    this.lastError = ''
    const socket = net.connect(port, '127.0.0.1')
    this.socket = socket
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.errors++
      this.lastError = err.code ?? err.message
    })
    socket.once('connect', () => socket.write(connectPacket({ clientId: `${this.user}:phone`, clean: false, username: this.user, password, keepaliveS: 600 })))
    framePackets(socket, (first, body) => {
      const type = first >> 4
      if (type === 2) this.connack = { sessionPresent: ((body[0] as number) & 1) === 1, returnCode: body[1] as number, ms: performance.now() - started }
      else if (type === 9) this.subacked = body[2] === 1
      else if (type === 3) this.#publish(first, body)
    })
  }

  subscribe (): void {
    this.socket?.write(subscribePacket(1, `user/${this.user}/inbox`, 1))
  }

  #publish (first: number, body: Buffer): void {
    const qos = (first >> 1) & 3
    const topicLength = body.readUInt16BE(0)
    const id = qos > 0 ? body.readUInt16BE(2 + topicLength) : 0
    const msg = JSON.parse(body.subarray(2 + topicLength + (qos > 0 ? 2 : 0)).toString()) as { t: string, client_msg_id?: string }
    if (msg.t === 'event' && msg.client_msg_id !== undefined) this.events.push(msg.client_msg_id)
    if (msg.t === 'membership') this.memberships++
    if (qos > 0 && !this.holdAcks) this.socket?.write(Buffer.from([0x40, 2, id >> 8, id & 0xff]))
  }
}

/** PostgreSQL reports a backend's counts when it goes idle, at most every second and at the latest 10 s later. */
const STATS_SETTLE_MS = 11_000

t.test(`a reconnect storm of ${DEVICES} persistent sessions after a node restart: every session back, nothing acknowledged lost, the store healthy`, async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: await leaseRedisUrl(t),
    THREADLINE_JWT_SECRET: TEST_SECRET,
    THREADLINE_MAX_CONNECTIONS: String(DEVICES + 100),
    // plugins/limits (when present): one address reconnecting 5,000 devices twice
    THREADLINE_CONNECT_IP_RATE: '0'
  }
  let node: ServerProcess = await spawnServer(t, { env })
  const tokens = createTokenService(TEST_SECRET)
  const run = randomBytes(3).toString('hex')
  const devices = Array.from({ length: DEVICES }, (_, i) => new Device(`st${run}-${i}`))
  t.teardown(() => { for (const d of devices) d.socket?.destroy() })
  const passwords = devices.map(d => tokens.sign({ sub: d.user }, 3600))

  // 1. the sessions: connected in waves, each subscribed to its inbox
  for (let i = 0; i < DEVICES; i += 500) {
    const wave = devices.slice(i, i + 500)
    for (const [j, d] of wave.entries()) d.connect(node.mqttPort, passwords[i + j] as string, performance.now())
    await waitFor(() => wave.every(d => d.connack !== null), `wave ${i / 500} connected`, WAIT_MS)
    for (const d of wave) d.subscribe()
    await waitFor(() => wave.every(d => d.subacked), `wave ${i / 500} subscribed`, WAIT_MS)
  }
  t.ok(devices.every(d => d.connack?.returnCode === 0), `${DEVICES} sessions`)

  // 2. groups of 250 (a membership envelope lists every member, to every member: one group
  // of 5,000 would fan out 200 MB); their membership envelopes are acknowledged
  const boss = tokens.sign({ sub: `boss${run}` }, 3600)
  const post = async (path: string, body: unknown): Promise<Response> => await fetch(`http://127.0.0.1:${node.httpPort}/v1/conversations${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${boss}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  const convIds: string[] = []
  for (let i = 0; i < DEVICES; i += GROUP) {
    const res = await post('', { type: 'group', title: `storm ${i / GROUP}`, members: devices.slice(i, i + GROUP).map(d => d.user) })
    if (res.status !== 201) t.fail(`group ${i / GROUP}: ${res.status}`)
    convIds.push(((await res.json()) as { id: string }).id)
  }
  await waitFor(() => devices.every(d => d.memberships >= 1), 'every device to hear it was added', WAIT_MS)

  // 3. two sends per group, acknowledged to the sender; every device gets them and acknowledges nothing
  for (const d of devices) d.holdAcks = true
  let acknowledged = 0
  for (const convId of convIds) {
    for (const id of ['before-restart-1', 'before-restart-2']) {
      const sent = await post(`/${convId}/messages`, { client_msg_id: id, type: 'text', text: `hello before the restart (${id})` })
      if (sent.status === 201) acknowledged++
    }
  }
  t.equal(acknowledged, 2 * convIds.length, 'every send acknowledged to its sender')
  await waitFor(() => devices.every(d => d.events.length >= 2), 'every device to get both messages', WAIT_MS)

  // 4. the node goes (SIGTERM: a drain) and a new one comes on the same ports, store and Redis
  const ports = { THREADLINE_MQTT_PORT: String(node.mqttPort), THREADLINE_HTTP_PORT: String(node.httpPort) }
  t.equal((await node.stop('SIGTERM')).code, 0, 'the node drains and exits')
  await waitFor(() => devices.every(d => d.socket?.destroyed === true), 'every device to see its connection end', WAIT_MS)
  for (const d of devices) {
    d.events.length = 0
    d.holdAcks = false
  }
  node = await spawnServer(t, { env: { ...env, ...ports } })

  // what the CONNECT path costs the store: PostgreSQL backends of the database sampled
  // every 20 ms, and its transactions (the pool runs each query as one) once counted
  // on another database, so that its own queries are not counted
  const admin = new pg.Client({ connectionString: adminUrl() as string })
  await admin.connect()
  const datname = new URL(db.url).pathname.slice(1)
  const transactions = async (): Promise<number> => {
    await admin.query('SELECT pg_stat_clear_snapshot()')
    const r = await admin.query<{ n: string }>('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1', [datname])
    return Number(r.rows[0]?.n)
  }
  await delay(STATS_SETTLE_MS)
  const transactionsBefore = await transactions()
  let peakBackends = 0
  let sampling = true
  const sampler = (async () => {
    for (;;) {
      const r = await admin.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [datname])
      peakBackends = Math.max(peakBackends, Number(r.rows[0]?.n))
      if (!sampling) return
      await delay(20)
    }
  })()
  // the sampler's query in flight must end before its client does
  t.teardown(async () => {
    sampling = false
    await sampler.catch(() => {})
    await admin.end()
  })

  // 5. the storm: every device at once (in slices of 500 a tick, so the accept queue is read between them)
  const started = performance.now()
  for (let i = 0; i < DEVICES; i += 500) {
    for (let j = i; j < Math.min(i + 500, DEVICES); j++) (devices[j] as Device).connect(node.mqttPort, passwords[j] as string, started)
    await new Promise(resolve => setImmediate(resolve))
  }
  const fired = performance.now() - started
  // a failed wait says where every device stands and what the node counted
  const explain = async (err: unknown): Promise<never> => {
    const by = new Map<string, number>()
    for (const d of devices) {
      const socket = d.socket === null ? 'none' : d.socket.destroyed ? 'closed' : d.socket.connecting ? 'connecting' : `open(read ${d.socket.bytesRead} B)`
      const key = `rc=${d.connack?.returnCode} present=${d.connack?.sessionPresent} events=${d.events.join('+')} errors=${d.errors}${d.lastError ? ` (${d.lastError})` : ''} socket=${socket}`
      by.set(key, (by.get(key) ?? 0) + 1)
    }
    t.comment([...by].map(([k, n]) => `${n} × ${k}`).join('\n'))
    t.comment(node.output.filter(line => /"level":(40|50)/.test(line)).slice(-20).join('\n'))
    const adminToken = tokens.sign({ sub: `admin${run}`, role: 'admin' }, 600)
    const metrics = await fetch(`http://127.0.0.1:${node.httpPort}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } }).then(async r => await r.text(), (e: unknown) => String(e))
    t.comment(metrics.split('\n').filter(line => /^threadline_(connections|sessions)/.test(line)).join('\n'))
    throw err
  }
  await waitFor(() => devices.every(d => d.connack !== null || d.errors > 0), 'every device to get its CONNACK', WAIT_MS, 5).catch(explain)
  const allConnected = performance.now() - started
  await waitFor(() => devices.every(d => d.events.length >= 2), 'every device to get both messages again', WAIT_MS, 5).catch(explain)
  const allDelivered = performance.now() - started
  sampling = false
  await sampler
  await delay(STATS_SETTLE_MS)
  const storeTransactions = await transactions() - transactionsBefore

  const refused = devices.filter(d => d.connack?.returnCode !== 0)
  const fresh = devices.filter(d => d.connack?.sessionPresent !== true)
  const errors = devices.reduce((n, d) => n + d.errors, 0)
  const times = devices.map(d => d.connack?.ms ?? Infinity).sort((a, b) => a - b)
  const pct = (p: number): number => Math.round(times[Math.min(times.length - 1, Math.floor(p * times.length))] as number)
  t.equal(refused.length, 0, 'every CONNECT accepted')
  t.equal(fresh.length, 0, 'every session present')
  t.equal(errors, 0, 'no socket error')
  t.ok(devices.every(d => d.events.includes('before-restart-1') && d.events.includes('before-restart-2')), 'both messages again on every device')
  const store = new pg.Client({ connectionString: db.url })
  await store.connect()
  t.teardown(() => store.end())
  const health = await store.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE conv_id = ANY($1)', [convIds])
  t.equal(Number(health.rows[0]?.n), 2 * convIds.length, 'the store answers, and holds every message once')

  t.comment(`storm: ${DEVICES} reconnects fired in ${Math.round(fired)} ms; all CONNACKed after ${Math.round(allConnected)} ms ` +
    `(${Math.round(DEVICES / (allConnected / 1000))} connects/s; CONNACK p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${pct(1) === Infinity ? 'n/a' : pct(0.9999)} ms); ` +
    `both unacknowledged messages redelivered to all after ${Math.round(allDelivered)} ms`)
  t.comment(`store during the storm: about ${storeTransactions} PostgreSQL transactions for the node's database ` +
    `(${(storeTransactions / DEVICES).toFixed(2)} per CONNECT, the node's other work of those seconds included), at most ${peakBackends} backends; socket errors ${errors}`)
})
