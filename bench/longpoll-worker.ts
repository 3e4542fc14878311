// The long-poll load worker (`--scenario longpoll`): one HTTP long-poll client per user,
// as an app without MQTT would be: its own keep-alive connection (a node:http Agent with
// one socket), its queue, and always one poll held. The events of each answer are booked
// like MQTT deliveries (deliveries.ts) at the moment the whole answer has arrived. Sends
// nothing; started by run.ts with an IPC channel, like load-worker.ts.
import http from 'node:http'
import { Phase, listen, recordArrival, sleepUntil, tell as send } from './deliveries.js'
import { type LongPollStep, type PollCounts, type RunCommand, type SetupCommand, nowUs } from './protocol.js'

const WORKER = Number(process.env.BENCH_WORKER_ID ?? '0')
const OPEN_CONCURRENCY = 25
/** every loop is bounded: polls one client makes at most over the worker's life */
const MAX_POLLS_PER_CLIENT = 1_000_000
/** after a failed poll, before the next (a client that hammers a failing node helps nobody) */
const RETRY_MS = 200

interface Client {
  readonly user: string
  readonly token: string
  readonly agent: http.Agent
  queueId: string
  lastEventId: number
}

interface Answer { status: number, body: string }

let base: URL | null = null
let timeoutS = 30
let clients: Client[] = []
const expectFrom = new Map<string, number[]>()
let senderUsers = new Map<number, string>()
let phase: Phase | null = null
let counts: PollCounts = { answers: 0, empty: 0, events: 0, failed: 0 }
let running = false

function request (c: Client, method: string, path: string, body?: unknown, onWritten?: () => void): Promise<Answer> {
  const url = base as URL
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method,
      path,
      agent: c.agent,
      headers: {
        authorization: `Bearer ${c.token}`,
        ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {})
      }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.once('error', reject)
    })
    // a held poll answers within its timeout: one that doesn't is broken, not slow
    req.setTimeout((timeoutS + 30) * 1000, () => req.destroy(new Error(`no answer within ${timeoutS + 30} s`)))
    req.once('error', reject)
    if (onWritten !== undefined) req.once('finish', onWritten)
    req.end(payload)
  })
}

function failed (message: string): void {
  const p = phase
  if (p === null) {
    process.stderr.write(`[longpoll worker] ${message}\n`)
    return
  }
  counts.failed++
  p.error(message)
}

/** Books one poll answer's events, all arrived at `at`. */
function onAnswer (c: Client, events: Array<Record<string, unknown>>, at: number): void {
  const p = phase
  if (p === null) return
  if (at >= p.run.markAt && at < p.run.stopAt) {
    counts.answers++
    counts.events += events.length
    if (events.length === 0) counts.empty++
  }
  for (const e of events) {
    if (e.t === 'error') p.error(`error event: ${String(e.code)} ${String(e.message)}`)
    if (e.t !== 'event') continue // receipts, membership: not part of this measurement
    recordArrival(p, senderUsers, c.user, e.conv_id as string, e.seq as number, e, at)
  }
}

/**
 * Polls on, acknowledging what it processed, until the worker closes. `written` runs once,
 * when the first poll is on the wire (or could not be).
 */
async function pollLoop (c: Client, written: () => void): Promise<void> {
  let first: (() => void) | undefined = written
  // eslint-disable-next-line no-unmodified-loop-condition -- close() clears it while the loop awaits
  for (let i = 0; i < MAX_POLLS_PER_CLIENT && running; i++) {
    let answer: Answer
    try {
      answer = await request(c, 'GET', `/v1/events?queue_id=${c.queueId}&last_event_id=${c.lastEventId}&timeout=${timeoutS}`, undefined, first)
    } catch (err) {
      first?.()
      first = undefined
      if (!running) return
      failed(`${c.user}: GET /v1/events: ${(err as Error).message}`)
      await new Promise(resolve => setTimeout(resolve, RETRY_MS))
      continue
    }
    first = undefined
    const at = nowUs()
    if (answer.status !== 200) {
      failed(`${c.user}: GET /v1/events: ${answer.status} ${answer.body.slice(0, 200)}`)
      // the queue is gone (expired, ended): this client is done
      if (answer.status === 404 || answer.status === 410) return
      await new Promise(resolve => setTimeout(resolve, RETRY_MS))
      continue
    }
    const body = JSON.parse(answer.body) as { events: Array<Record<string, unknown>>, last_event_id: number }
    onAnswer(c, body.events, at)
    c.lastEventId = body.last_event_id
  }
}

async function openQueues (): Promise<void> {
  const queue = [...clients]
  const lane = async (): Promise<void> => {
    for (let c = queue.shift(); c !== undefined; c = queue.shift()) {
      const res = await request(c, 'POST', '/v1/events/queue', { device_id: 'bench' })
      if (res.status !== 200) throw new Error(`${c.user}: POST /v1/events/queue: ${res.status} ${res.body.slice(0, 200)}`)
      const created = JSON.parse(res.body) as { queue_id: string, last_event_id: number }
      c.queueId = created.queue_id
      c.lastEventId = created.last_event_id
    }
  }
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, queue.length) }, lane))
}

/** Starts every client's poll loop; resolves once each first poll is written. */
function holdPolls (): Promise<void> {
  running = true
  return new Promise(resolve => {
    let left = clients.length
    if (left === 0) return resolve()
    const written = (): void => { if (--left === 0) resolve() }
    for (const c of clients) void pollLoop(c, written)
  })
}

async function step (which: LongPollStep): Promise<void> {
  const started = Date.now()
  if (which === 'open') await openQueues()
  else await holdPolls()
  send({ type: 'longpoll', worker: WORKER, step: which, ms: Date.now() - started })
}

function doSetup (cmd: SetupCommand): void {
  base = new URL(cmd.url)
  timeoutS = cmd.longpoll?.timeoutS ?? timeoutS
  senderUsers = new Map(Object.entries(cmd.senderUsers).map(([k, v]) => [Number(k), v]))
  clients = cmd.clients.map(spec => ({
    user: spec.user,
    token: spec.token,
    agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
    queueId: '',
    lastEventId: 0
  }))
  for (const spec of cmd.clients) expectFrom.set(spec.user, spec.expectFrom)
  // queues open in a step of their own, so the driver can read the server's memory first
  send({ type: 'ready', worker: WORKER, connectMs: 0 })
}

/** Polls go on across phases; a phase only says which sends count and when the window is. */
async function doRun (cmd: RunCommand): Promise<void> {
  const p = new Phase(cmd, WORKER)
  counts = { answers: 0, empty: 0, events: 0, failed: 0 }
  phase = p
  await sleepUntil(cmd.stopAt)
  send({ type: 'acked', worker: WORKER, acked: {} })
  const drained = await p.drain(expectFrom, cmd.stopAt + cmd.drainMs * 1000)
  send({ type: 'result', result: { ...p.result(drained, false), transport: 'longpoll', polls: { ...counts } } })
}

function close (): void {
  running = false
  // in-flight polls end with their sockets; their loops see `running` and stop
  for (const c of clients) c.agent.destroy()
  process.disconnect?.()
}

listen(WORKER, async (msg) => {
  switch (msg.cmd) {
    case 'setup': return doSetup(msg)
    case 'longpoll': return await step(msg.step)
    case 'run': return await doRun(msg)
    case 'expect': return phase?.expect(msg)
    case 'close':
      close()
      process.exit(0)
  }
})
