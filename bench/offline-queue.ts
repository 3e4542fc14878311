// What an offline device costs: one persistent session (clean=false, subscribed to its
// inbox) stays away while --messages QoS 1 inbox events are published to it, with the
// offline queue cap (THREADLINE_OFFLINE_QUEUE_MAX, --cap) and, for comparison, with a cap
// too large to matter. Reports the queue length and the node's heap and RSS before and
// after (and Redis' used_memory with REDIS_URL), then how many events the device gets at
// reconnect. Heap counts Buffers too (`arrayBuffers`). Each phase runs in a child process of its own, so one phase's garbage never
// counts against the next.
//
//   npx tsx bench/offline-queue.ts [--messages 100000] [--cap 1000]
//   REDIS_URL=redis://127.0.0.1:6379/15 npx tsx bench/offline-queue.ts   # adds the Redis phases
//
// Loopback only; PGlite in a temp dir unless DATABASE_URL is set (the store is not on this
// path: events are published the way fan-out publishes them, straight to the broker).
// Bounded: --messages at most 1,000,000, each phase at most 180 s.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { loadConfig } from '../broker/config.js'
import { createLogger } from '../broker/logger.js'
import { RedisQueues } from '../broker/patches/redis-outgoing.js'
import { REDIS_IDLE_KEY } from '../broker/session-expiry-redis.js'
import { startThreadline } from '../broker/server.js'

interface Phase { redis: boolean, cap: number, messages: number }
interface Result extends Phase {
  published: number
  publishS: number
  queued: number
  heapBeforeMiB: number
  heapAfterMiB: number
  rssBeforeMiB: number
  rssAfterMiB: number
  redisBeforeMiB: number | null
  redisAfterMiB: number | null
  replayed: number | null
}

const PHASE_TIMEOUT_MS = 180_000
const UNCAPPED = 1_000_000
const MiB = (bytes: number): number => Math.round(bytes / 1048576 * 10) / 10

function arg (name: string, fallback: number, max: number): number {
  const i = process.argv.indexOf(`--${name}`)
  if (i === -1) return fallback
  const n = Number(process.argv[i + 1])
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} takes a whole number from 1 to ${max}`)
  return n
}

function gc (): void {
  setFlagsFromString('--expose-gc')
  const collect = runInNewContext('gc') as () => void
  collect()
  collect()
}

async function redisUsedMemory (db: Redis): Promise<number> {
  const info = await db.info('memory')
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN)
}

async function runPhase (phase: Phase): Promise<Result> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'threadline-bench-oq-'))
  const redisUrl = phase.redis ? process.env.REDIS_URL ?? null : null
  const config = loadConfig({
    THREADLINE_MQTT_PORT: '0',
    THREADLINE_HTTP_PORT: '0',
    THREADLINE_HOST: '127.0.0.1',
    THREADLINE_DATA_DIR: dataDir,
    THREADLINE_JWT_SECRET: 'bench-offline-queue-secret-0123456789',
    THREADLINE_LOG_LEVEL: 'warn',
    THREADLINE_OFFLINE_QUEUE_MAX: String(phase.cap),
    ...(redisUrl !== null ? { REDIS_URL: redisUrl } : {}),
    ...(process.env.DATABASE_URL !== undefined ? { DATABASE_URL: process.env.DATABASE_URL } : {})
  })
  const node = await startThreadline(config, createLogger(config.logLevel))
  const db = redisUrl !== null ? new Redis(redisUrl) : null
  const user = `bench-oq-${randomUUID().slice(0, 8)}`
  const clientId = `${user}:phone`
  const inbox = `user/${user}/inbox`
  const connect = (clean: boolean) => mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, {
    clientId, username: user, password: node.tokens.sign({ sub: user }, 3600), protocolVersion: 4, reconnectPeriod: 0, clean
  })
  try {
    const phone = connect(false)
    await new Promise<void>((resolve, reject) => { phone.once('connect', () => resolve()); phone.once('error', reject) })
    await phone.subscribeAsync(inbox, { qos: 1 })
    await phone.endAsync()

    gc()
    const before = process.memoryUsage()
    const redisBefore = db !== null ? await redisUsedMemory(db) : null

    // an envelope the size of a short text event
    const payload = (seq: number): Buffer => Buffer.from(JSON.stringify({
      t: 'event',
      conv_id: '6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f',
      seq,
      sender_id: 'bench-sender',
      client_msg_id: `m-${seq}`,
      type: 'text',
      text: 'a short message of the usual length, about sixty characters',
      ts: new Date().toISOString()
    }))
    const publish = (seq: number): Promise<void> => new Promise((resolve, reject) => {
      node.broker.publish({ cmd: 'publish', topic: inbox, payload: payload(seq), qos: 1, retain: false, dup: false }, (err) => err ? reject(err) : resolve())
    })
    const started = performance.now()
    const deadline = Date.now() + PHASE_TIMEOUT_MS / 2
    let published = 0
    while (published < phase.messages && Date.now() < deadline) {
      const batch = Math.min(500, phase.messages - published)
      await Promise.all(Array.from({ length: batch }, (_, i) => publish(published + i + 1)))
      published += batch
    }
    const publishS = (performance.now() - started) / 1000

    let queued: number
    if (db !== null) {
      await db.ping() // behind the node's own trims? they ride another connection: give them one round trip
      queued = await new RedisQueues(db, REDIS_IDLE_KEY).length(clientId)
    } else {
      queued = 0
      const store = (node.broker as unknown as { persistence: { outgoingStream(c: { id: string }): AsyncIterable<unknown> } }).persistence
      for await (const _packet of store.outgoingStream({ id: clientId })) queued++ // eslint-disable-line @typescript-eslint/no-unused-vars
    }
    gc()
    const after = process.memoryUsage()
    const redisAfter = db !== null ? await redisUsedMemory(db) : null

    // the replay of an uncapped queue is the very cost the cap avoids: only capped phases
    let replayed: number | null = null
    if (phase.cap < UNCAPPED) {
      const back = connect(false)
      let got = 0
      const done = new Promise<void>((resolve) => {
        back.on('message', () => { if (++got >= queued) resolve() })
      })
      await Promise.race([done, new Promise(resolve => setTimeout(resolve, 30_000))])
      replayed = got
      await back.endAsync()
    }
    if (db !== null) await new RedisQueues(db, REDIS_IDLE_KEY).drain(clientId) // don't leave 100,000 packets in someone's Redis
    const cleanup = connect(true) // clean=true removes the session
    await new Promise<void>((resolve, reject) => { cleanup.once('connect', () => resolve()); cleanup.once('error', reject) })
    await cleanup.endAsync()

    return {
      ...phase,
      published,
      publishS: Math.round(publishS * 10) / 10,
      queued,
      // payloads are Buffers: outside the JS heap, in arrayBuffers
      heapBeforeMiB: MiB(before.heapUsed + before.arrayBuffers),
      heapAfterMiB: MiB(after.heapUsed + after.arrayBuffers),
      rssBeforeMiB: MiB(before.rss),
      rssAfterMiB: MiB(after.rss),
      redisBeforeMiB: redisBefore !== null ? MiB(redisBefore) : null,
      redisAfterMiB: redisAfter !== null ? MiB(redisAfter) : null,
      replayed
    }
  } finally {
    db?.disconnect()
    await node.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}

function runChild (phase: Phase): Promise<Result> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--phase', JSON.stringify(phase)], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), PHASE_TIMEOUT_MS)
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      clearTimeout(timer)
      const line = out.trim().split('\n').at(-1) ?? ''
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as Result)
      else reject(new Error(`phase ${JSON.stringify(phase)} failed (exit ${code}): ${out.slice(-500)}`))
    })
  })
}

async function main (): Promise<void> {
  const i = process.argv.indexOf('--phase')
  if (i !== -1) {
    const result = await runPhase(JSON.parse(process.argv[i + 1] ?? '{}') as Phase)
    process.stdout.write(JSON.stringify(result) + '\n')
    process.exit(0) // a client library timer must not keep a finished phase alive
  }
  const messages = arg('messages', 100_000, 1_000_000)
  const cap = arg('cap', 1000, UNCAPPED - 1)
  const phases: Phase[] = [{ redis: false, cap, messages }, { redis: false, cap: UNCAPPED, messages }]
  if (process.env.REDIS_URL !== undefined) phases.push({ redis: true, cap, messages }, { redis: true, cap: UNCAPPED, messages })
  console.log('| broker state | cap | published | queued | heap + buffers before → after (MiB) | RSS before → after (MiB) | Redis used_memory before → after (MiB) | replayed at reconnect | publish time (s) |')
  console.log('|---|---|---|---|---|---|---|---|---|')
  for (const phase of phases) {
    const r = await runChild(phase)
    console.log(`| ${r.redis ? 'Redis' : 'memory'} | ${r.cap >= UNCAPPED ? 'none (1,000,000)' : r.cap} | ${r.published} | ${r.queued} | ${r.heapBeforeMiB} → ${r.heapAfterMiB} | ${r.rssBeforeMiB} → ${r.rssAfterMiB} | ${r.redisBeforeMiB ?? '–'} → ${r.redisAfterMiB ?? '–'} | ${r.replayed ?? '(not replayed)'} | ${r.publishS} |`)
  }
}

await main()
