// A provider that never answers must not slow message delivery nor grow memory without
// bound (DESIGN.md §4 "Push failures never slow or block message flow"). Measured: the
// send→deliver latency of an online member while every push hangs, against a node with
// push off; and the push queues and requests open at the providers, which stay at their
// bounds however many notifications pile up.
import t, { type Test } from 'tap'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { CONCURRENCY } from '../../plugins/push/queue.js'
import type { PushService } from '../../core/push/service.js'
import { UNLIMITED_SENDS, connectUser } from '../helpers/node.js'
import { userId } from '../helpers/fixtures.js'
import { withTimeout } from '../helpers/wait.js'
import { pushCredentials, startFakeApns, startFakeFcm } from '../helpers/push-fakes.js'
import { createGroup, fcmToken, iosToken, registerDevice, startPushNode } from '../helpers/push.js'

const MESSAGES = 150
const OFFLINE_MEMBERS = 10
const QUEUE_MAX = 20

interface Run {
  latenciesMs: number[]
  maxQueued: { apns: number, fcm: number }
}

interface Group {
  /** sends one message and resolves with its send→deliver latency in ms */
  one(i: number): Promise<number>
  readonly push: PushService
}

/** A group of a sender, an online member and OFFLINE_MEMBERS members away with two devices each. */
async function group (t: Test, node: Threadline, push: PushService): Promise<Group> {
  const [alice, olga] = [userId('alice'), userId('olga')]
  const away = Array.from({ length: OFFLINE_MEMBERS }, (_, i) => userId(`away${i}`))
  const convId = await createGroup(t, node, alice, 'Busy group', [olga, ...away])
  for (const [i, u] of away.entries()) {
    await registerDevice(t, node, u, 'iphone', 'ios', iosToken(i + 1))
    await registerDevice(t, node, u, 'pixel', 'android', fcmToken(u))
  }
  const sender = await connectUser(t, node, alice, 'phone')
  const reader: MqttClient = await connectUser(t, node, olga, 'phone')
  await reader.subscribeAsync(`user/${olga}/inbox`, { qos: 1 })
  const arrived = new Map<string, () => void>()
  reader.on('message', (_topic, payload) => {
    const env = JSON.parse(payload.toString()) as { client_msg_id?: string }
    if (env.client_msg_id !== undefined) arrived.get(env.client_msg_id)?.()
  })
  return {
    push,
    async one (i) {
      const id = `m${i}`
      const delivered = new Promise<void>(resolve => arrived.set(id, resolve))
      const start = process.hrtime.bigint()
      await sender.publishAsync(`conv/${convId}/send`, JSON.stringify({ client_msg_id: id, type: 'text', text: `message ${i}` }), { qos: 1 })
      await withTimeout(delivered, `delivery of ${id}`)
      return Number(process.hrtime.bigint() - start) / 1e6
    }
  }
}

/** Sends alternate between the groups, so that whatever else the machine does costs both alike. */
async function measure (groups: readonly Group[], from: number): Promise<Run[]> {
  const runs = groups.map(() => ({ latenciesMs: [] as number[], maxQueued: { apns: 0, fcm: 0 } }))
  for (let i = from; i < from + MESSAGES; i++) {
    for (const [g, grp] of groups.entries()) {
      const run = runs[g] as Run
      run.latenciesMs.push(await grp.one(i))
      const queued = grp.push.queued()
      run.maxQueued.apns = Math.max(run.maxQueued.apns, queued.apns)
      run.maxQueued.fcm = Math.max(run.maxQueued.fcm, queued.fcm)
    }
  }
  return runs
}

const percentile = (xs: number[], p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
}

t.test('a provider that never answers leaves delivery latency unchanged and memory bounded', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const fcm = await startFakeFcm(t, creds.fcm)
  apns.answer = () => 'hang'
  fcm.answer = () => 'hang'
  const hung = await startPushNode(t, creds, { apns, fcm }, {
    env: {
      THREADLINE_PUSH_WINDOW_MS: '20',
      THREADLINE_PUSH_QUEUE_MAX: String(QUEUE_MAX),
      // requests stay open for the whole run: the provider holds every slot it is given
      THREADLINE_PUSH_TIMEOUT_MS: '60000',
      THREADLINE_PUSH_RETRIES: '0',
      ...UNLIMITED_SENDS
    }
  })
  const off = await startPushNode(t, creds, { apns: null, fcm: null }, { env: UNLIMITED_SENDS })

  const groups = [await group(t, off.node, off.push), await group(t, hung.node, hung.push)]
  await measure(groups, 0) // warm-up
  const [base, withHung] = await measure(groups, MESSAGES) as [Run, Run]

  const summary = (r: Run): string => `p50 ${percentile(r.latenciesMs, 0.5).toFixed(2)} ms, p95 ${percentile(r.latenciesMs, 0.95).toFixed(2)} ms`
  t.comment(`send→deliver, push off: ${summary(base)}; every push hanging: ${summary(withHung)}`)
  t.comment(`push queue high-water marks: apns ${withHung.maxQueued.apns}, fcm ${withHung.maxQueued.fcm} (bound ${QUEUE_MAX}); requests open at the fakes: apns ${apns.maxOpen}, fcm ${fcm.maxOpen} (bound ${CONCURRENCY} each)`)
  // a busy 2-core machine jitters: "unchanged" within a factor of two and a few ms
  t.ok(percentile(withHung.latenciesMs, 0.5) <= 2 * percentile(base.latenciesMs, 0.5) + 3, 'median latency unchanged')
  t.ok(percentile(withHung.latenciesMs, 0.95) <= 2 * percentile(base.latenciesMs, 0.95) + 10, 'p95 latency unchanged')

  const counters = hung.push.counters()
  t.ok(withHung.maxQueued.apns <= QUEUE_MAX && withHung.maxQueued.fcm <= QUEUE_MAX, 'the queues never held more than their bound')
  t.ok(apns.maxOpen <= CONCURRENCY && fcm.maxOpen <= CONCURRENCY, 'at most CONCURRENCY requests open at each provider')
  t.ok(apns.maxOpen > 0 && fcm.maxOpen > 0, 'both providers were reached and held the requests')
  t.ok(counters.apns.failed > 0 && counters.fcm.failed > 0, `notifications past the bound were dropped and counted (apns ${counters.apns.failed}, fcm ${counters.fcm.failed})`)
  t.equal(counters.apns.sent + counters.fcm.sent, 0, 'nothing was sent')
})
