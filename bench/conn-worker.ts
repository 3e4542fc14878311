// One client process of `--scenario connections`: opens idle persistent MQTT sessions
// (clean=false, each its own `<user>:<device>`, subscribed to its inbox at QoS 1) with a
// bounded number connecting at once, times each from the TCP connect to its SUBACK, and
// holds them open, sending nothing but keepalive pings, until the driver says close.
// The same code connects to Threadline and to raw Aedes (which ignores the token).
import * as hdr from 'hdr-histogram-js'
import mqtt, { type MqttClient } from 'mqtt'
import { histogram, listen, tell } from './deliveries.js'
import { type SessionsCommand, type SessionsResult, nowUs } from './protocol.js'

const WORKER = Number(process.env.BENCH_WORKER_ID ?? '0')
const CONNECT_TIMEOUT_MS = 30_000
const MAX_ERROR_SAMPLES = 5

const clients: MqttClient[] = []
let dropped = 0
let closing = false

/** Connects one session and subscribes its inbox; resolves at the SUBACK. */
function open (cmd: SessionsCommand, s: SessionsCommand['sessions'][number]): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(cmd.url, {
      clientId: `${s.user}:${s.device}`,
      username: s.user,
      password: s.token,
      protocolVersion: 4,
      clean: false,
      keepalive: cmd.keepaliveS,
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS
    })
    let subscribed = false
    const fail = (err: Error): void => {
      if (subscribed) return
      client.end(true)
      reject(new Error(`${s.user}: ${err.message}`))
    }
    client.once('error', fail)
    client.once('close', () => {
      if (!subscribed) fail(new Error('connection closed before SUBACK'))
      else if (!closing) dropped++
    })
    client.once('connect', () => {
      const filter = `user/${s.user}/inbox`
      client.subscribeAsync(filter, { qos: 1 }).then((granted) => {
        if (granted[0]?.qos !== 1) return fail(new Error(`SUBSCRIBE ${filter} answered ${granted[0]?.qos}`))
        subscribed = true
        client.off('error', fail)
        // an idle session's later errors end in 'close', counted as dropped
        client.on('error', () => {})
        resolve(client)
      }, fail)
    })
  })
}

async function openAll (cmd: SessionsCommand): Promise<SessionsResult> {
  const latency = histogram()
  const errors: string[] = []
  let failed = 0
  let firstAt = Infinity
  let lastAt = 0
  const queue = [...cmd.sessions]
  const lane = async (): Promise<void> => {
    for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
      const started = nowUs()
      firstAt = Math.min(firstAt, started)
      try {
        clients.push(await open(cmd, s))
        const at = nowUs()
        lastAt = Math.max(lastAt, at)
        latency.recordValue(Math.max(1, Math.round(at - started)))
      } catch (err) {
        failed++
        if (errors.length < MAX_ERROR_SAMPLES) errors.push(err instanceof Error ? err.message : String(err))
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(cmd.concurrency, queue.length)) }, lane))
  return {
    opened: latency.totalCount,
    failed,
    errorSamples: errors,
    firstAt: Number.isFinite(firstAt) ? firstAt : 0,
    lastAt,
    connectToSuback: hdr.encodeIntoCompressedBase64(latency),
    dropped
  }
}

async function close (): Promise<void> {
  closing = true
  // without DISCONNECT: the broker keeps each persistent session as a lost connection would leave it
  await Promise.all(clients.splice(0).map(c => c.endAsync(true).catch(() => {})))
  process.disconnect?.()
}

listen(WORKER, async (msg) => {
  switch (msg.cmd) {
    case 'sessions':
      tell({ type: 'sessions', worker: WORKER, result: await openAll(msg) })
      return
    case 'close':
      await close()
      process.exit(0)
  }
})
