// One load-generating process: opens MQTT.js connections, publishes QoS 1 sends (closed
// loop with a window of PUBACKs in flight, or open loop paced by the clock), and records
// every delivery: latency, duplicates, order, loss bitmaps. Started by run.ts with an IPC
// channel; knows nothing about servers or SQL.
import mqtt, { type MqttClient } from 'mqtt'
import * as hdr from 'hdr-histogram-js'
import { Bitmap } from './bitmap.js'
import {
  type DriverMessage, type ExpectCommand, type PhaseResult, type RunCommand, type SenderSpec, type SetupCommand, type SignalsResult, type WorkerMessage,
  clientMsgId, nowUs, parseClientMsgId
} from './protocol.js'

const WORKER = Number(process.env.BENCH_WORKER_ID ?? '0')
const CONNECT_CONCURRENCY = 25
const CONNECT_TIMEOUT_MS = 15_000
const MAX_ERROR_SAMPLES = 5

function send (msg: WorkerMessage): void {
  process.send?.(msg)
}

const histogram = (): hdr.Histogram =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 })

interface Sender {
  spec: SenderSpec
  client: MqttClient
  next: number
  /** clients of this worker, other than the sender, that receive its sends */
  localRecipients: number
}

/** Everything recorded during one phase. */
class Phase {
  readonly latencyIntended = histogram()
  readonly latencyActual = histogram()
  readonly schedulerLag = histogram()
  sent = 0
  acked = 0
  ackedInWindow = 0
  deliveredInWindow = 0
  delivered = 0
  echoed = 0
  duplicates = 0
  orderViolations = 0
  seqGaps = 0
  errors = 0
  stray = 0
  inflight = 0
  readonly errorSamples: string[] = []
  readonly signals: SignalsResult = { receiptsSent: 0, typingSent: 0, inboxSummaries: 0, ownMarkers: 0, convSummaries: 0 }
  readonly ackedBits = new Map<number, Bitmap>()
  readonly receivedBits = new Map<string, Bitmap>()
  /** `<user>\0<sender>` → distinct sends received (what the drain waits on) */
  readonly receivedCount = new Map<string, number>()
  /** sender index → sends PUBACKed */
  readonly ackedCount = new Map<number, number>()
  /** set by the driver's `expect`: sender index → sends acked across all workers */
  expected: Map<number, number> | null = null
  wakeExpect: (() => void) | null = null
  /**
   * Closed loop only: `<sender>.<n>` → what the send still waits for (its PUBACK and its
   * deliveries to local recipients) before its sender may publish the next one.
   */
  readonly open = new Map<string, { left: number, then: () => void }>()

  settle (key: string): void {
    const o = this.open.get(key)
    if (o === undefined || --o.left > 0) return
    this.open.delete(key)
    o.then()
  }

  /** `<user>\0<conv>` → last seq (Threadline) or `<user>\0<sender>` → last n (raw Aedes) */
  readonly lastOrder = new Map<string, number>()

  constructor (readonly run: RunCommand) {}

  error (message: string): void {
    this.errors++
    if (this.errorSamples.length < MAX_ERROR_SAMPLES) this.errorSamples.push(message)
  }

  result (drained: boolean): PhaseResult {
    const bits = <K>(m: Map<K, Bitmap>): Record<string, string> =>
      Object.fromEntries([...m].map(([k, b]) => [String(k), b.toBase64()]))
    return {
      worker: WORKER,
      latencyFromIntended: hdr.encodeIntoCompressedBase64(this.latencyIntended),
      latencyFromActual: hdr.encodeIntoCompressedBase64(this.latencyActual),
      schedulerLag: hdr.encodeIntoCompressedBase64(this.schedulerLag),
      sent: this.sent,
      acked: this.acked,
      ackedInWindow: this.ackedInWindow,
      deliveredInWindow: this.deliveredInWindow,
      delivered: this.delivered,
      echoed: this.echoed,
      duplicates: this.duplicates,
      orderViolations: this.orderViolations,
      seqGaps: this.seqGaps,
      errors: this.errors,
      errorSamples: this.errorSamples,
      stray: this.stray,
      ackedBits: bits(this.ackedBits),
      receivedBits: bits(this.receivedBits),
      drained,
      ...(setup?.signals !== undefined ? { signals: { ...this.signals } } : {})
    }
  }
}

let setup: SetupCommand | null = null
const clients = new Map<string, MqttClient>()
/** user → senders whose sends it must receive */
const expectFrom = new Map<string, number[]>()
let senders: Sender[] = []
/** sender index → user, for every sender of the scenario (they may live in other workers) */
let senderUsers = new Map<number, string>()
let phase: Phase | null = null
let padding = ''

function connect (url: string, user: string, token: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      clientId: `${user}:bench`,
      username: user,
      password: token,
      protocolVersion: 4,
      clean: true,
      keepalive: 120,
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS
    })
    const fail = (err: Error): void => {
      client.end(true)
      reject(new Error(`${user}: ${err.message}`))
    }
    client.once('error', fail)
    client.once('connect', () => {
      client.off('error', fail)
      client.on('error', (err) => phase?.error(`${user}: ${err.message}`))
      client.on('close', () => { if (setup !== null) phase?.error(`${user}: connection closed`) })
      resolve(client)
    })
  })
}

async function doSetup (cmd: SetupCommand): Promise<void> {
  setup = cmd
  padding = 'x'.repeat(cmd.padding)
  senderUsers = new Map(Object.entries(cmd.senderUsers).map(([k, v]) => [Number(k), v]))
  const started = Date.now()
  const queue = [...cmd.clients]
  const lane = async (): Promise<void> => {
    for (let spec = queue.shift(); spec !== undefined; spec = queue.shift()) {
      const client = await connect(cmd.url, spec.user, spec.token)
      const user = spec.user
      client.on('message', (topic, payload) => onMessage(user, topic, payload))
      clients.set(user, client)
      expectFrom.set(user, spec.expectFrom)
      for (const filter of spec.subscribe) {
        const granted = await client.subscribeAsync(filter, { qos: 1 })
        if (granted[0]?.qos !== 1) throw new Error(`${user}: SUBSCRIBE ${filter} answered ${granted[0]?.qos}`)
      }
      if (cmd.signals?.watcher === user) {
        const filter = `conv/${cmd.signals.convId}/receipts`
        const granted = await client.subscribeAsync(filter, { qos: 0 })
        if (granted[0]?.qos !== 0) throw new Error(`${user}: SUBSCRIBE ${filter} answered ${granted[0]?.qos}`)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, queue.length) }, lane))
  senders = cmd.senders.map(spec => {
    const client = clients.get(spec.user)
    if (client === undefined) throw new Error(`sender ${spec.user} has no connection in this worker`)
    const localRecipients = cmd.clients.filter(c => c.user !== spec.user && c.expectFrom.includes(spec.index)).length
    return { spec, client, next: 0, localRecipients }
  })
  send({ type: 'ready', worker: WORKER, connectMs: Date.now() - started })
}

function onMessage (user: string, topic: string, payload: Buffer): void {
  const at = nowUs()
  const p = phase
  if (p === null || setup === null) return
  let msg: Record<string, unknown>
  try {
    msg = JSON.parse(payload.toString()) as Record<string, unknown>
  } catch {
    p.stray++
    return
  }
  let seq: number | null = null
  let conv: string
  if (setup.target === 'threadline') {
    if (msg.t === 'error') return p.error(`error event: ${String(msg.code)} ${String(msg.message)}`)
    if (msg.t === 'receipts') {
      if (topic.startsWith('conv/')) p.signals.convSummaries++
      else if ((msg.markers as Array<{ user_id: string }>).every(m => m.user_id === user)) p.signals.ownMarkers++
      else p.signals.inboxSummaries++
      return
    }
    if (msg.t !== 'event') return // membership: not part of this measurement
    seq = msg.seq as number
    conv = msg.conv_id as string
  } else {
    conv = topic
  }
  const id = parseClientMsgId(String(msg.client_msg_id))
  if (id === null || id.phase !== p.run.phase || !senderUsers.has(id.sender)) {
    p.stray++
    return
  }
  const bitsKey = `${user}\u0000${id.sender}`
  let bits = p.receivedBits.get(bitsKey)
  if (bits === undefined) p.receivedBits.set(bitsKey, bits = new Bitmap())
  if (bits.add(id.n)) {
    p.duplicates++
    return
  }
  p.receivedCount.set(bitsKey, (p.receivedCount.get(bitsKey) ?? 0) + 1)
  // Threadline: seq grows per conversation at every member. Raw Aedes has no seq: a
  // sender's own publish order is what MQTT promises [MQTT-4.6.0-5].
  const orderKey = seq !== null ? `${user}\u0000${conv}` : bitsKey
  const order = seq ?? id.n
  const last = p.lastOrder.get(orderKey)
  if (last !== undefined && order <= last) p.orderViolations++
  else {
    if (seq !== null && last !== undefined && order > last + 1) p.seqGaps += order - last - 1
    p.lastOrder.set(orderKey, order)
  }
  if (senderUsers.get(id.sender) === user) {
    p.echoed++
    return
  }
  if (setup.signals?.receipts === true && seq !== null) sendReceipts(p, user, conv, seq)
  p.delivered++
  if (p.open.size > 0) p.settle(`${id.sender}.${id.n}`)
  if (at >= p.run.markAt && at < p.run.stopAt) p.deliveredInWindow++
  const text = String(msg.text)
  const space = text.indexOf(' ')
  const intended = Number(text.slice(0, space))
  const actual = Number(text.slice(space + 1, text.indexOf(' ', space + 1)))
  if (intended >= p.run.markAt && intended < p.run.stopAt) {
    p.latencyIntended.recordValue(Math.max(1, Math.round(at - intended)))
    p.latencyActual.recordValue(Math.max(1, Math.round(at - actual)))
  }
}

/** What an app does when a message arrives and is shown: delivered, then read (QoS 0). */
function sendReceipts (p: Phase, user: string, conv: string, seq: number): void {
  const client = clients.get(user)
  if (client === undefined) return
  const topic = `conv/${conv}/read`
  client.publish(topic, `{"status":"delivered","seq":${seq}}`, { qos: 0 })
  client.publish(topic, `{"status":"read","seq":${seq}}`, { qos: 0 })
  p.signals.receiptsSent += 2
}

/**
 * The typists of this worker publish {"typing":true} every typingEveryMs, spread over
 * the interval, from startAt until stopAt; answers how to stop early.
 */
function startTyping (p: Phase): () => void {
  const spec = setup?.signals
  const typists = (spec?.typists ?? []).filter(u => clients.has(u))
  if (spec === undefined || typists.length === 0) return () => {}
  const timers = new Map<string, NodeJS.Timeout>()
  const topic = `conv/${spec.convId}/typing`
  typists.forEach((user, i) => {
    const tick = (): void => {
      if (nowUs() >= p.run.stopAt) return
      clients.get(user)?.publish(topic, '{"typing":true}', { qos: 0 })
      p.signals.typingSent++
      timers.set(user, setTimeout(tick, spec.typingEveryMs))
    }
    timers.set(user, setTimeout(tick, Math.round(i * spec.typingEveryMs / typists.length)))
  })
  return () => { for (const t of timers.values()) clearTimeout(t) }
}

/** `then` runs once the send is PUBACKed and, with `awaitDelivery`, delivered to its local recipients. */
function publish (p: Phase, s: Sender, intended: number, awaitDelivery: boolean, then: () => void): void {
  const n = s.next++
  const key = `${s.spec.index}.${n}`
  if (awaitDelivery) p.open.set(key, { left: 1 + s.localRecipients, then })
  const actual = nowUs()
  if (p.run.shape.kind === 'rate' && intended >= p.run.markAt) p.schedulerLag.recordValue(Math.max(1, Math.round(actual - intended)))
  const body = JSON.stringify({ client_msg_id: clientMsgId(p.run.phase, s.spec.index, n), type: 'text', text: `${Math.round(intended)} ${Math.round(actual)} ${padding}` })
  p.sent++
  p.inflight++
  s.client.publish(s.spec.topic, body, { qos: 1 }, (err) => {
    p.inflight--
    if (err) p.error(`publish: ${err.message}`)
    else {
      p.acked++
      p.ackedCount.set(s.spec.index, (p.ackedCount.get(s.spec.index) ?? 0) + 1)
      let bits = p.ackedBits.get(s.spec.index)
      if (bits === undefined) p.ackedBits.set(s.spec.index, bits = new Bitmap())
      bits.add(n)
      const at = nowUs()
      if (at >= p.run.markAt && at < p.run.stopAt) p.ackedInWindow++
    }
    p.settle(key)
  })
}

const noop = (): void => {}

const sleepUntil = (t: number): Promise<void> => new Promise(resolve => setTimeout(resolve, Math.max(0, (t - nowUs()) / 1000)))

/**
 * Closed loop: a sender keeps `window` sends open; a send closes when it is PUBACKed and
 * delivered to its recipients (both in this worker for pairs), and then its sender
 * publishes the next one, until stopAt or maxSends. Counting deliveries too keeps the
 * fan-out backlog bounded: Threadline PUBACKs at commit, before its fan-out is written.
 */
function runWindow (p: Phase, window: number): Promise<void> {
  return new Promise(resolve => {
    let open = senders.length
    if (open === 0) return resolve()
    for (const s of senders) {
      let mine = window
      const next = (): void => {
        if (nowUs() >= p.run.stopAt || p.sent >= p.run.maxSends) {
          if (--mine === 0 && --open === 0) resolve()
          return
        }
        publish(p, s, nowUs(), true, next)
      }
      for (let i = 0; i < window; i++) next()
    }
  })
}

/**
 * Open loop: send k is due at startAt + k/rate, whatever happened to earlier sends, and
 * its latency counts from that due time, so a stall shows up in the latency instead of
 * silently lowering the offered load (coordinated omission). Round-robin over senders.
 */
function runRate (p: Phase, ratePerS: number): Promise<void> {
  return new Promise(resolve => {
    if (senders.length === 0 || ratePerS <= 0) return resolve()
    const interval = 1e6 / ratePerS
    let k = 0
    const tick = (): void => {
      const now = nowUs()
      const due = Math.min(p.run.maxSends, Math.floor((now - p.run.startAt) / interval) + 1)
      for (; k < due; k++) {
        const intended = p.run.startAt + k * interval
        if (intended >= p.run.stopAt) break
        publish(p, senders[k % senders.length] as Sender, intended, false, noop)
      }
      if (now >= p.run.stopAt || k >= p.run.maxSends) return resolve()
      setTimeout(tick, 1)
    }
    tick()
  })
}

async function doRun (cmd: RunCommand): Promise<void> {
  const p = new Phase(cmd)
  phase = p
  await sleepUntil(cmd.startAt)
  const stopTyping = startTyping(p)
  if (cmd.shape.kind === 'window') await runWindow(p, cmd.shape.window)
  else await runRate(p, cmd.shape.ratePerS)
  stopTyping()
  // drain, bounded by drainMs: first our outstanding PUBACKs; then, once the driver has
  // told everyone how many sends each sender got acknowledged, every one of them
  // delivered to each of our clients that should receive it
  const deadline = Math.max(nowUs(), cmd.stopAt) + cmd.drainMs * 1000
  const pause = (): Promise<void> => new Promise(resolve => setTimeout(resolve, 20))
  while (p.inflight > 0 && nowUs() < deadline) await pause()
  send({ type: 'acked', worker: WORKER, acked: Object.fromEntries([...p.ackedCount].map(([k, v]) => [String(k), v])) })
  const expected = await new Promise<Map<number, number>>(resolve => {
    if (p.expected !== null) return resolve(p.expected)
    p.wakeExpect = () => resolve(p.expected as Map<number, number>)
  })
  const complete = (): boolean => {
    for (const [user, from] of expectFrom) {
      for (const sender of from) {
        if ((p.receivedCount.get(`${user}\u0000${sender}`) ?? 0) < (expected.get(sender) ?? 0)) return false
      }
    }
    return true
  }
  let drained = p.inflight === 0 && complete()
  while (!drained && nowUs() < deadline) {
    await pause()
    drained = p.inflight === 0 && complete()
  }
  send({ type: 'result', result: p.result(drained) })
}

function onExpect (cmd: ExpectCommand): void {
  const p = phase
  if (p === null || p.run.phase !== cmd.phase) return
  p.expected = new Map(Object.entries(cmd.acked).map(([k, v]) => [Number(k), v]))
  p.wakeExpect?.()
}

async function close (): Promise<void> {
  setup = null
  await Promise.all([...clients.values()].map(c => c.endAsync(true).catch(() => {})))
  clients.clear()
  process.disconnect?.()
}

process.on('message', (raw) => {
  const msg = raw as DriverMessage
  const fatal = (err: unknown): void => {
    send({ type: 'fatal', worker: WORKER, message: err instanceof Error ? err.message : String(err) })
  }
  switch (msg.cmd) {
    case 'setup': doSetup(msg).catch(fatal); break
    case 'run': doRun(msg).catch(fatal); break
    case 'expect': onExpect(msg); break
    case 'close': close().then(() => process.exit(0), fatal); break
  }
})
// The driver going away takes its workers with it.
process.on('disconnect', () => process.exit(0))
