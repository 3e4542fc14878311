// docs/deploy.md's cluster on loopback: two real node processes on one PostgreSQL and one
// Redis, behind Debian's HAProxy configured as the document says (MQTT in `mode tcp`,
// REST, MQTT over WebSocket and long-poll in `mode http`, health checks on /readyz).
// A conversation runs through HAProxy over all three transports, then one node is killed
// with kill -9 mid-conversation: its clients reconnect through HAProxy to the other node,
// and nothing acknowledged (PUBACKed, or answered 201/200 over HTTP) is lost, stored
// twice, or missing at any recipient. The clients connect from another loopback address
// than HAProxy's, and the nodes' logs name the clients', not HAProxy's: the PROXY protocol
// on MQTT, X-Forwarded-For on HTTP.
import { once } from 'node:events'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import mqtt, { type IClientOptions, MqttClient } from 'mqtt'
import { createTokenService } from '../../core/tokens.js'
import { text, userId } from '../helpers/fixtures.js'
import { CLIENT_ADDRESS, type Haproxy, type HttpClient, httpClient, PROXY_ADDRESS, startHaproxy } from '../helpers/haproxy.js'
import { TEST_SECRET, tempDir } from '../helpers/node.js'
import { connectPacket } from '../helpers/raw-mqtt.js'
import { createDatabase } from '../helpers/pg-database.js'
import { leaseRedisUrl } from '../helpers/redis-db.js'
import { spawnServer, type ServerProcess } from '../helpers/spawn-node.js'
import { waitFor, withTimeout } from '../helpers/wait.js'

/** sends per sender (one over MQTT/TCP, one over MQTT/WebSocket, one over REST) */
const SENDS = 40
/** acknowledged sends, all senders together, before the kill */
const KILL_AFTER = 30
/** failed HTTP requests (a 5xx or a cut connection) a client repeats, in all, before the test gives up */
const MAX_RETRIES = 50
/** how long the clients may take to converge after the kill */
const SETTLE_MS = 30_000

const tokens = createTokenService(TEST_SECRET)
const bearer = (user: string): string => tokens.sign({ sub: user }, 3600)
const range = (n: number): number[] => Array.from({ length: n }, (_, k) => k + 1)
/** an address a client claims in X-Forwarded-For or a PROXY header of its own (TEST-NET-3) */
const FORGED = '203.0.113.7'

interface ChatEvent { t: string, conv_id?: string, seq?: number, client_msg_id?: string }
interface HistoryPage { events: ChatEvent[], has_more: boolean }

/**
 * The conversation as one client keeps it, the way docs/protocol.md's Guarantees tell a
 * client to: events by seq, duplicates dropped, and a gap (an event more than one above
 * the highest seq held, or a reconnection) filled from history, through HAProxy. Live
 * copies of events the dying node committed but had not yet published can be missing;
 * the history has them.
 */
class Copy {
  readonly live = new Set<number>()
  readonly fromHistory = new Set<number>()
  /** live copies of a seq it held already (QoS 1 redeliveries) */
  redelivered = 0
  historyRetries = 0
  private highest = 0
  private filling: Promise<void> = Promise.resolve()
  private listeners: Array<() => void> = []

  constructor (readonly label: string, private readonly user: string, private readonly conv: string, private readonly http: HttpClient) {}

  has (seq: number): boolean { return this.live.has(seq) || this.fromHistory.has(seq) }

  /** A live event, from the inbox or the long-poll queue. */
  event (e: ChatEvent): void {
    if (e.t !== 'event' || e.conv_id !== this.conv || typeof e.seq !== 'number') return
    if (this.has(e.seq)) {
      this.redelivered++
      return
    }
    this.live.add(e.seq)
    if (e.seq > this.highest + 1) this.fill()
    this.highest = Math.max(this.highest, e.seq)
    this.changed()
  }

  /** Fetches history after the first seq it lacks (one fill at a time). */
  fill (): void {
    this.filling = this.filling.then(async () => {
      let after = 0
      while (this.has(after + 1)) after++
      for (;;) {
        const res = await this.http<HistoryPage>(bearer(this.user), 'GET', `/v1/conversations/${this.conv}/events?after_seq=${after}&limit=200`).catch(() => null)
        if (res === null || res.status >= 500) {
          if (++this.historyRetries > MAX_RETRIES) throw new Error(`${this.label}: history failed ${this.historyRetries} times`)
          continue
        }
        if (res.status !== 200) throw new Error(`${this.label}: history answered ${res.status}`)
        for (const e of res.body.events) {
          if (typeof e.seq !== 'number' || this.has(e.seq)) continue
          this.fromHistory.add(e.seq)
          this.highest = Math.max(this.highest, e.seq)
        }
        this.changed()
        if (!res.body.has_more || res.body.events.length === 0) return
        after = res.body.events.at(-1)?.seq ?? after
      }
    })
  }

  /** Resolves once it holds every seq in 1..n; fails on a failed fill or after `ms`. */
  async holdsAll (n: number, ms: number): Promise<void> {
    const done = (): boolean => range(n).every(seq => this.has(seq))
    let listener = (): void => {}
    const all = new Promise<void>(resolve => {
      listener = () => { if (done()) resolve() }
      this.listeners.push(listener)
      listener()
    })
    await withTimeout(Promise.all([all, this.filling]), `${this.label} to hold seqs 1..${n} (missing: ${range(n).filter(seq => !this.has(seq)).join(', ')})`, ms,
      () => { this.listeners = this.listeners.filter(l => l !== listener) })
  }

  private changed (): void {
    for (const l of this.listeners) l()
  }
}

type Connect = (opts: IClientOptions) => MqttClient

/** MQTT over TCP to HAProxy from `localAddress` (mqtt.js' own TCP connector takes no source address). */
const overTcp = (port: number, localAddress: string): Connect => opts =>
  new MqttClient(() => net.connect({ host: PROXY_ADDRESS, port, localAddress }), opts)

/** MQTT over the WebSocket at /mqtt from `localAddress`; `headers` go with the upgrade request. */
const overWebSocket = (port: number, localAddress: string, headers: Record<string, string> = {}): Connect => opts =>
  mqtt.connect(`ws://${PROXY_ADDRESS}:${port}/mqtt`, { ...opts, wsOptions: { localAddress, headers } })

/** An MQTT device through HAProxy that reconnects by itself, as an app would. */
class Device {
  readonly client: MqttClient
  readonly copy: Copy
  /** ms from the kill to each reconnect */
  readonly reconnectedAfter: number[] = []
  closes = 0

  constructor (t: Test, readonly label: string, connect: Connect, readonly user: string, device: string, conv: string, lbHttp: HttpClient, killedAt: () => number) {
    this.copy = new Copy(label, user, conv, lbHttp)
    this.client = connect({
      clientId: `${user}:${device}`,
      username: user,
      password: bearer(user),
      protocolVersion: 4,
      // a persistent session: what arrives while it reconnects waits in Redis
      clean: false,
      reconnectPeriod: 100,
      connectTimeout: 5000
    })
    this.client.on('error', () => {}) // its socket dies with the node it is on
    this.client.on('close', () => { this.closes++ })
    this.client.on('connect', () => {
      if (killedAt() === 0) return
      this.reconnectedAfter.push(performance.now() - killedAt())
      this.copy.fill() // back after an absence: catch up, as the SDK does
    })
    this.client.on('message', (_topic, payload) => { this.copy.event(JSON.parse(payload.toString()) as ChatEvent) })
    t.teardown(() => this.client.endAsync(true))
  }

  async connected (): Promise<void> {
    if (this.client.connected) return
    await withTimeout(new Promise(resolve => this.client.once('connect', resolve)), `${this.label} to connect through HAProxy`)
  }
}

/** Which server of `backend` took the connection `connect` opens: the one whose count rose. */
async function placeOf (lb: Haproxy, backend: string, connect: () => Promise<void>): Promise<string> {
  const count = async (): Promise<Map<string, number>> =>
    new Map((await lb.stat()).filter(s => s.backend === backend).map(s => [s.server, s.current]))
  const before = await count()
  await connect()
  let server: string | undefined
  await waitFor(async () => {
    const after = await count()
    server = [...after].find(([name, n]) => n > (before.get(name) ?? 0))?.[0]
    return server !== undefined
  }, `HAProxy to count the new connection in ${backend}`, 5000)
  return server as string
}

interface LogLine { msg?: string, [field: string]: unknown }

/** The JSON lines the nodes wrote to stdout so far (a killed node's too). */
function logLines (nodes: readonly ServerProcess[]): LogLine[] {
  return nodes.flatMap(n => n.output).flatMap((line) => {
    try {
      const entry: unknown = JSON.parse(line)
      return typeof entry === 'object' && entry !== null ? [entry as LogLine] : []
    } catch {
      return []
    }
  })
}

/** The `n`th 401 the nodes logged (`request refused`), once it is there. */
async function refusedRequest (nodes: readonly ServerProcess[], n: number): Promise<LogLine> {
  const refused = (): LogLine[] => logLines(nodes).filter(l => l.msg === 'request refused' && l.status === 401)
  await waitFor(() => refused().length >= n, `the nodes to log refused request #${n}`, 5000)
  return refused()[n - 1] as LogLine
}

async function startNodes (t: Test): Promise<ServerProcess[]> {
  const db = await createDatabase()
  t.teardown(db.drop)
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: await leaseRedisUrl(t),
    THREADLINE_JWT_SECRET: TEST_SECRET,
    THREADLINE_SEND_RATE: '100000',
    THREADLINE_SEND_BURST: '100000',
    THREADLINE_TRUST_PROXY: PROXY_ADDRESS
  }
  const nodes: ServerProcess[] = []
  // one after the other: the first migrates, the second finds the schema in place
  for (let i = 0; i < 2; i++) nodes.push(await spawnServer(t, { env: { ...env, THREADLINE_DATA_DIR: await tempDir(t) } }))
  return nodes
}

t.test('two nodes behind HAProxy: MQTT, WebSocket and REST through it, then kill -9 of a node loses nothing acknowledged', async (t) => {
  const [one, two] = await startNodes(t) as [ServerProcess, ServerProcess]
  const lb = await startHaproxy(t, [{ name: 'one', ...one }, { name: 'two', ...two }])
  const byName = new Map([['one', one], ['two', two]])
  const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
  const lbHttp = httpClient(t, lb.httpPort, CLIENT_ADDRESS)

  const ready = await lbHttp(null, 'GET', '/readyz')
  t.equal(ready.status, 200, 'GET /readyz through HAProxy')
  const created = await lbHttp<{ id: string }>(bearer(alice), 'POST', '/v1/conversations', { type: 'group', title: 'deploy', members: [bob, carol] })
  t.equal(created.status, 201, 'alice creates a group with bob and carol over REST through HAProxy')
  const conv = created.body.id

  let killedAt = 0
  const device = (label: string, connect: Connect, user: string, name: string): Device =>
    new Device(t, label, connect, user, name, conv, lbHttp, () => killedAt)
  const tcp = overTcp(lb.mqttPort, CLIENT_ADDRESS)
  // the WebSocket devices claim another address: HAProxy drops their X-Forwarded-For
  const ws = overWebSocket(lb.httpPort, CLIENT_ADDRESS, { 'x-forwarded-for': FORGED })
  // one at a time, so HAProxy's counts say which node took which (leastconn spreads them)
  const devices: Device[] = []
  const place = new Map<Device, string>()
  for (const [label, connect, user, name, backend] of [
    ['alice:phone (MQTT/TCP)', tcp, alice, 'phone', 'mqtt_nodes'],
    ['bob:phone (MQTT/TCP)', tcp, bob, 'phone', 'mqtt_nodes'],
    ['alice:web (MQTT/WebSocket)', ws, alice, 'web', 'http_nodes'],
    ['bob:web (MQTT/WebSocket)', ws, bob, 'web', 'http_nodes']
  ] as const) {
    let d: Device | undefined
    const server = await placeOf(lb, backend, async () => {
      d = device(label, connect, user, name)
      await d.connected()
    })
    if (d === undefined) throw new Error(`${label} was never made`)
    place.set(d, server)
    await d.client.subscribeAsync(`user/${user}/inbox`, { qos: 1 })
    devices.push(d)
  }
  const [alicePhone, bobPhone, aliceWeb, bobWeb] = devices as [Device, Device, Device, Device]
  t.not(place.get(alicePhone), place.get(bobPhone), 'the two MQTT/TCP devices are on different nodes')
  t.not(place.get(aliceWeb), place.get(bobWeb), 'the two WebSocket devices are on different nodes')

  // REST: a refused request (a bad token, 401, logged at info) names the client's address,
  // though it claims another in X-Forwarded-For
  await lbHttp('not-a-token', 'GET', `/v1/conversations/${conv}/events?after_seq=0`, undefined, { headers: { 'x-forwarded-for': FORGED } })
  t.equal((await refusedRequest([one, two], 1)).ip, CLIENT_ADDRESS, `REST: the node logged the client's ${CLIENT_ADDRESS}, not HAProxy's ${PROXY_ADDRESS} or the forged ${FORGED}`)
  // A client whose own address is trusted (THREADLINE_TRUST_PROXY as a subnet that holds
  // clients too) would be believed about the hop before it: only HAProxy's del-header
  // keeps its forged one from the node. HAProxy's own address plays that client here.
  const fromProxyAddress = httpClient(t, lb.httpPort, PROXY_ADDRESS)
  await fromProxyAddress('not-a-token', 'GET', `/v1/conversations/${conv}/events?after_seq=0`, undefined, { headers: { 'x-forwarded-for': FORGED } })
  t.equal((await refusedRequest([one, two], 2)).ip, PROXY_ADDRESS, 'REST from a trusted address: HAProxy dropped the forged X-Forwarded-For')

  // MQTT/TCP: a client's own PROXY header comes after HAProxy's, where the node reads MQTT
  const forger = net.connect({ host: PROXY_ADDRESS, port: lb.mqttPort, localAddress: CLIENT_ADDRESS })
  forger.on('error', () => {}) // reset by HAProxy when the node closes
  t.teardown(() => forger.destroy())
  const forgerGot: Buffer[] = []
  forger.on('data', (chunk: Buffer) => forgerGot.push(chunk))
  // closed, or (were the header believed) answered
  const forgerDone = Promise.race([once(forger, 'close'), once(forger, 'data')])
  forger.write(Buffer.concat([
    Buffer.from(`PROXY TCP4 ${FORGED} ${PROXY_ADDRESS} 51234 1883\r\n`),
    connectPacket({ clientId: `${alice}:forger`, clean: true, username: alice, password: bearer(alice) })
  ]))
  await withTimeout(forgerDone, 'the node to close a connection with a PROXY header of the client\'s own', 15_000)
  t.equal(Buffer.concat(forgerGot).length, 0, 'MQTT/TCP: a client\'s own PROXY header behind HAProxy\'s gets no CONNACK')

  // the node to kill is alice:phone's, so a TCP sender is cut; the WebSocket sender is
  // the WebSocket device on the same node
  const victimName = place.get(alicePhone) as string
  const victim = byName.get(victimName) as ServerProcess
  const wsSender = place.get(aliceWeb) === victimName ? aliceWeb : bobWeb
  t.comment(`node "${victimName}" is killed: it holds ${alicePhone.label} and ${wsSender.label}`)

  // carol follows the conversation over long-poll through HAProxy, repeating a poll whose
  // answer she lost (HAProxy answers 502 when the node dies under it) with the same id
  const queue = await lbHttp<{ queue_id: string, last_event_id: number }>(bearer(carol), 'POST', '/v1/events/queue', { device_id: 'browser' })
  t.equal(queue.status, 200, 'carol opens a long-poll queue through HAProxy')
  const carolCopy = new Copy('carol (long-poll)', carol, conv, lbHttp)
  let pollFailures = 0
  const stopPolling = new AbortController()
  const stopPoller = (): void => { stopPolling.abort() }
  t.teardown(stopPoller) // runs before the nodes and HAProxy stop, even when an assertion failed
  const poller = (async () => {
    let last = queue.body.last_event_id
    while (!stopPolling.signal.aborted) {
      // null: the node died under the poll (or the test stopped it)
      const res = await lbHttp<{ events: ChatEvent[], last_event_id: number }>(bearer(carol), 'GET',
        `/v1/events?queue_id=${queue.body.queue_id}&last_event_id=${last}&timeout=5`, undefined, { signal: stopPolling.signal }).catch(() => null)
      if (stopPolling.signal.aborted) return
      if (res === null || res.status >= 500) {
        // HAProxy answers 502 for a poll cut by the kill; a few, not a loop without end
        if (++pollFailures > MAX_RETRIES) throw new Error(`long-poll: ${pollFailures} polls failed, the last ${res?.status ?? 'a network error'}`)
        continue
      }
      if (res.status !== 200) throw new Error(`GET /v1/events answered ${res.status}: ${JSON.stringify(res.body)}`)
      for (const e of res.body.events) carolCopy.event(e)
      last = res.body.last_event_id
    }
  })()
  poller.catch(() => {}) // awaited below, after the sends

  // three senders at once, each in order, one send at a time; node `victim` dies from
  // inside the acknowledgement handler of the KILL_AFTER-th send
  const acked: string[] = []
  let markedDown: Promise<number> | undefined
  const ack = (id: string): void => {
    acked.push(id)
    if (acked.length === KILL_AFTER) {
      killedAt = performance.now()
      victim.child.kill('SIGKILL')
      markedDown = waitFor(async () => (await lb.stat()).filter(s => s.server === victimName).every(s => s.status.startsWith('DOWN')),
        `HAProxy to mark "${victimName}" DOWN`, 5000).then(() => performance.now() - killedAt)
      markedDown.catch(() => {}) // awaited below
    }
  }
  const mqttSender = async (d: Device, prefix: string): Promise<void> => {
    for (const k of range(SENDS)) {
      // while the device reconnects, mqtt.js keeps the send and publishes it (again) once
      // connected: the PUBACK then comes from the other node
      await d.client.publishAsync(`conv/${conv}/send`, text(`${prefix}${k}`, `${d.label} ${k}`), { qos: 1 })
      ack(`${prefix}${k}`)
    }
  }
  let restRetries = 0
  const restSender = async (): Promise<void> => {
    for (const k of range(SENDS)) {
      const body = { client_msg_id: `rest${k}`, type: 'text', text: `carol over REST ${k}` }
      for (;;) {
        // the same client_msg_id again after a lost answer: 200 with the original seq if it was stored
        const res = await lbHttp(bearer(carol), 'POST', `/v1/conversations/${conv}/messages`, body).catch(() => null)
        if (res?.status === 201 || res?.status === 200) break
        if (res !== null && res.status < 500) throw new Error(`REST send answered ${res.status}: ${JSON.stringify(res.body)}`)
        if (++restRetries > MAX_RETRIES) throw new Error(`REST send: ${restRetries} retries, the last ${res?.status ?? 'a network error'}`)
      }
      ack(`rest${k}`)
    }
  }
  const senders = Promise.all([mqttSender(alicePhone, 'tcp'), mqttSender(wsSender, 'ws'), restSender()])
  await withTimeout(senders, `${3 * SENDS} sends acknowledged through HAProxy`, SETTLE_MS)
  t.equal((await victim.exited).signal, 'SIGKILL', `node "${victimName}" died of SIGKILL`)
  t.equal(acked.length, 3 * SENDS, 'every send was acknowledged in the end, on the surviving node')

  const downAfter = await markedDown
  t.pass(`HAProxy marked "${victimName}" DOWN in both backends ${downAfter?.toFixed(0)} ms after the kill`)

  // history over REST through HAProxy: every acknowledged send once, seqs gapless
  const history = await lbHttp<{ events: ChatEvent[], has_more: boolean }>(bearer(bob), 'GET', `/v1/conversations/${conv}/events?after_seq=0&limit=200`)
  t.equal(history.status, 200, 'history over REST through HAProxy')
  t.notOk(history.body.has_more, 'the whole history in one page')
  const ids = history.body.events.map(e => e.client_msg_id as string)
  const n = ids.length
  t.same(history.body.events.map(e => e.seq), range(n), `seqs 1..${n}: gapless, in order`)
  t.equal(new Set(ids).size, n, 'no send is stored twice')
  t.same([...ids].sort(), [...acked].sort(), 'exactly the acknowledged sends are stored')
  for (const prefix of ['tcp', 'ws', 'rest']) {
    t.same(ids.filter(id => id.startsWith(prefix)), range(SENDS).map(k => `${prefix}${k}`), `${prefix} sends stored in the order they were sent`)
  }

  // every recipient holds every event: the devices of the dead node after reconnecting
  // through HAProxy, carol by repeating her polls; each fills gaps from history
  const copies = [...devices.map(d => d.copy), carolCopy]
  await Promise.all(copies.map(c => c.holdsAll(n, SETTLE_MS)))
  stopPoller()
  await poller
  for (const c of copies) {
    t.pass(`${c.label} holds seqs 1..${n}: ${c.live.size} live, ${c.fromHistory.size} from history, ${c.redelivered} live duplicates dropped`)
  }
  for (const d of devices) {
    const cut = place.get(d) === victimName
    t.equal(d.closes > 0, cut, cut ? `${d.label} lost its node and reconnected through HAProxy` : `${d.label} stayed connected`)
  }

  // every MQTT connection of every device, on either node and after the reconnections,
  // came from the client's address as the node saw it: the PROXY protocol (TCP), and
  // HAProxy's X-Forwarded-For in place of the devices' forged one (WebSocket)
  for (const d of devices) {
    const cut = place.get(d) === victimName
    const clientId = d.client.options.clientId
    let ips: unknown[] = []
    await waitFor(() => {
      ips = logLines([one, two]).filter(l => l.msg === 'client connected' && l.clientId === clientId).map(l => l.ip)
      return ips.length >= (cut ? 2 : 1)
    }, `the nodes to log ${d.label}'s connections`, 5000)
    t.same([...new Set(ips)], [CLIENT_ADDRESS], `${d.label}: ${ips.length} connection(s) logged from ${CLIENT_ADDRESS}`)
  }
  t.notOk(logLines([one, two]).some(l => l.clientId === `${alice}:forger`), 'the client with its own PROXY header never connected')
  // the nodes require the header of a trusted peer: HAProxy sent it on every MQTT connection
  t.notOk(logLines([one, two]).some(l => l.reason === 'proxy_header_missing'), 'no MQTT connection from HAProxy came without a PROXY header')

  const reconnects = devices.filter(d => place.get(d) === victimName).map(d => `${d.label} after ${d.reconnectedAfter.map(ms => ms.toFixed(0)).join(', ')} ms`)
  t.comment(`kill -9 → reconnected: ${reconnects.join('; ')}; REST sends retried ${restRetries}×; polls failed ${pollFailures}×`)
})
