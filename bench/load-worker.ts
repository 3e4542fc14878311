// One load-generating process: opens MQTT.js connections, publishes QoS 1 sends (closed
// loop with a window of PUBACKs in flight, or open loop paced by the clock), and records
// every delivery: latency, duplicates, order, loss bitmaps. Started by run.ts with an IPC
// channel; knows nothing about servers or SQL.
import mqtt, { type MqttClient } from 'mqtt'
import { Bitmap } from './bitmap.js'
import { Phase, listen, recordArrival, pause, sleepUntil, tell as send } from './deliveries.js'
import { type ReceiptPattern, type RunCommand, type SenderSpec, type SetupCommand, type SignalsSpec, clientMsgId, nowUs } from './protocol.js'

const WORKER = Number(process.env.BENCH_WORKER_ID ?? '0')
const CONNECT_CONCURRENCY = 25
const CONNECT_TIMEOUT_MS = 15_000

interface Sender {
  spec: SenderSpec
  client: MqttClient
  next: number
  /** clients of this worker, other than the sender, that receive its sends */
  localRecipients: number
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
  const key = recordArrival(p, senderUsers, user, conv, seq, msg, at)
  if (key === null) return
  // raw Aedes has no seq: the sender's message number stands in (same payload size)
  const pattern = setup.signals?.receipts ?? null
  if (pattern !== null) sendReceipts(p, user, (setup.signals as SignalsSpec).convId, seq ?? Number(key.slice(key.indexOf('.') + 1)), pattern)
  if (p.open.size > 0) p.settle(key)
}

/** What an app does when a message arrives and is shown (QoS 0): delivered then read, or read alone. */
function sendReceipts (p: Phase, user: string, conv: string, seq: number, pattern: ReceiptPattern): void {
  const client = clients.get(user)
  if (client === undefined) return
  const topic = `conv/${conv}/read`
  if (pattern === 'both') {
    client.publish(topic, `{"status":"delivered","seq":${seq}}`, { qos: 0 })
    p.signals.receiptsSent++
  }
  client.publish(topic, `{"status":"read","seq":${seq}}`, { qos: 0 })
  p.signals.receiptsSent++
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
  const p = new Phase(cmd, WORKER)
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
  while (p.inflight > 0 && nowUs() < deadline) await pause()
  send({ type: 'acked', worker: WORKER, acked: Object.fromEntries([...p.ackedCount].map(([k, v]) => [String(k), v])) })
  const drained = await p.drain(expectFrom, deadline)
  send({ type: 'result', result: p.result(drained, setup?.signals !== undefined) })
}

async function close (): Promise<void> {
  setup = null
  await Promise.all([...clients.values()].map(c => c.endAsync(true).catch(() => {})))
  clients.clear()
  process.disconnect?.()
}

listen(WORKER, async (msg) => {
  switch (msg.cmd) {
    case 'setup': return await doSetup(msg)
    case 'run': return await doRun(msg)
    case 'expect': return phase?.expect(msg)
    case 'close':
      await close()
      process.exit(0)
  }
})
