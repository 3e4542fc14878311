// Every series of one node, in a Registry of its own (never prom-client's global one: the
// tests run several nodes in one process, and each must count only its own traffic).
// Events (sends, commits, refusals) add to plain numbers as they happen; everything that
// already exists somewhere (connections, pools, queues, push counters) is read at scrape.
import type { Aedes, Client } from 'aedes'
import { collectDefaultMetrics, Registry, type Metric } from 'prom-client'
import type { PluginContext } from '../../broker/plugin.js'
import { BROKER_STATE } from '../../core/broker-state.js'
import { LONGPOLL_STATS, type LongPollStats } from '../../core/longpoll/stats.js'
import { SEND_SERVICE } from '../../core/messages/send-service.js'
import { PUSH_SERVICE, type PushCounters, type PushProviderName } from '../../core/push/service.js'
import { TELEMETRY, type Transport } from '../../core/telemetry.js'
import { BucketHistogram, Buckets, Sampled, Tally, type Sample } from './sampled.js'

/** seconds: a send's answer is a commit away, a few ms on a healthy store, seconds on a sick one */
const LATENCY_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** sends per commit: group commit takes up to 500 */
const BATCH_BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500]
const TRANSPORTS: readonly Transport[] = ['mqtt', 'http']
/** the answers a send can get, present at 0 from the start */
const SEND_RESULTS = ['ok', 'duplicate', 'bad_request', 'not_member', 'not_found', 'forbidden', 'too_large', 'rate_limited', 'unavailable', 'internal']
const STORE_ERROR_KINDS = ['unavailable', 'refused', 'conflict', 'fault']
const PROVIDERS: readonly PushProviderName[] = ['apns', 'fcm']
const PUSH_RESULTS: ReadonlyArray<readonly [string, keyof PushCounters]> = [['sent', 'sent'], ['retried', 'retried'], ['failed', 'failed'], ['unregistered', 'pruned']]

// Node's process and event-loop metrics describe the process, not a node: one set per
// process (each set holds an event-loop delay timer and a GC observer that prom-client
// never stops), registered into every node's registry, which adds its own node label.
let processMetrics: readonly Metric[] | null = null
function processMetricsOnce (): readonly Metric[] {
  if (processMetrics === null) {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    // the array holds the metric objects themselves (typed as their JSON shape)
    processMetrics = registry.getMetricsAsArray() as unknown as Metric[]
  }
  return processMetrics
}

// plain fields of an Aedes instance and its clients that the type declarations leave out
const clientsOf = (broker: Aedes): Record<string, Client & { req?: unknown }> =>
  (broker as unknown as { clients: Record<string, Client & { req?: unknown }> }).clients

export interface NodeSeries {
  readonly registry: Registry
  /** packets handed to clients: the authorizeForward hook adds to it */
  readonly deliveries: { count: number }
  /** stops listening to the node's telemetry */
  stop(): void
}

export function nodeSeries (ctx: PluginContext, nodeId: string): NodeSeries {
  const registry = new Registry()
  registry.setDefaultLabels({ node: nodeId })
  for (const metric of processMetricsOnce()) registry.registerMetric(metric)
  const telemetry = ctx.services.get(TELEMETRY)
  const sends = ctx.services.get(SEND_SERVICE)
  const brokerState = ctx.services.find(BROKER_STATE)
  const deliveries = { count: 0 }

  const sendResults = new Map(TRANSPORTS.map(t => [t, new Tally(SEND_RESULTS)]))
  const latency = new Map(TRANSPORTS.map(t => [t, new Buckets(LATENCY_BOUNDS)]))
  const commitSize = new Buckets(BATCH_BOUNDS)
  const commitSeconds = new Buckets(LATENCY_BOUNDS)
  const limited = new Tally()
  const refused = new Tally()
  const storeErrors = new Tally(STORE_ERROR_KINDS)
  const counts = { offlineDropped: 0, receiptsCoalesced: 0 }
  const stops = [
    telemetry.on('send', (e) => {
      sendResults.get(e.transport)?.add(e.result)
      latency.get(e.transport)?.observe(e.ms / 1000)
    }),
    telemetry.on('commit', (e) => {
      commitSize.observe(e.size)
      commitSeconds.observe(e.ms / 1000)
    }),
    telemetry.on('limited', (e) => limited.add(e.limit)),
    telemetry.on('connectionRefused', (e) => refused.add(e.reason)),
    telemetry.on('offlineDropped', (e) => { counts.offlineDropped += e.count }),
    telemetry.on('receiptsCoalesced', (e) => { counts.receiptsCoalesced += e.count }),
    telemetry.on('storeError', (e) => storeErrors.add(e.kind))
  ]

  const one = (value: number): Sample[] => [[{}, value]]
  const series = [
    new Sampled('threadline_connections', 'MQTT clients connected to this node (CONNACK sent), by transport (tcp, ws)', 'gauge', () => {
      let tcp = 0
      let ws = 0
      for (const client of Object.values(clientsOf(ctx.broker))) {
        // listeners.ts hands Aedes the HTTP upgrade request of WebSocket connections only
        if (client.req !== undefined && client.req !== null) ws++
        else tcp++
      }
      return [[{ transport: 'tcp' }, tcp], [{ transport: 'ws' }, ws]]
    }),
    new Sampled('threadline_connections_max', 'THREADLINE_MAX_CONNECTIONS: MQTT connections this node accepts before it answers CONNACK 3', 'gauge', () => one(ctx.config.maxConnections)),
    new Sampled('threadline_sessions', 'Persistent (clean=false) MQTT sessions: connected to this node, or away (kept until they expire; with Redis, the whole cluster\'s)', 'gauge', async () => {
      let connected = 0
      for (const client of Object.values(clientsOf(ctx.broker))) if (!client.clean) connected++
      const samples: Sample[] = [[{ state: 'connected' }, connected]]
      if (brokerState !== undefined) samples.push([{ state: 'away' }, await brokerState.sessionsAway()])
      return samples
    }),
    new Sampled('threadline_sends_total', 'Sends answered, MQTT and HTTP, by result: ok (stored), duplicate (a retry of a stored send) or the error code', 'counter', () =>
      TRANSPORTS.flatMap(transport => sendResults.get(transport)?.samples('result', { transport }) ?? [])),
    new BucketHistogram('threadline_send_duration_seconds', 'From a send\'s arrival to its answer: the PUBACK (MQTT) or the HTTP response', TRANSPORTS.map(transport => [{ transport }, latency.get(transport) as Buckets])),
    new Sampled('threadline_sends_pending', 'Sends accepted and not answered yet (queued for or in a commit)', 'gauge', () => one(sends.pending)),
    new BucketHistogram('threadline_commit_batch_size', 'Sends per group commit (one transaction)', [[{}, commitSize]]),
    new BucketHistogram('threadline_commit_duration_seconds', 'How long a group commit\'s transaction took', [[{}, commitSeconds]]),
    new Sampled('threadline_deliveries_total', 'Packets handed to connected MQTT clients (after the delivery-time ACL)', 'counter', () => one(deliveries.count)),
    new Sampled('threadline_fanout_in_flight', 'Fan-out publishes of committed sends not finished yet: the delivery backlog (senders are held back past 4096)', 'gauge', () => one(sends.fanout.inFlight)),
    new Sampled('threadline_offline_dropped_total', 'Packets dropped from away devices\' offline queues past THREADLINE_OFFLINE_QUEUE_MAX (the device fills the gap from history)', 'counter', () => one(counts.offlineDropped)),
    new Sampled('threadline_rate_limited_total', 'Requests refused by a rate limit, by limit', 'counter', () => limited.samples('limit')),
    new Sampled('threadline_connections_refused_total', 'Connections refused before they had a session, by reason', 'counter', () => refused.samples('reason')),
    new Sampled('threadline_receipts_coalesced_total', 'Receipts merged into one already waiting for the store (writes saved)', 'counter', () => one(counts.receiptsCoalesced)),
    new Sampled('threadline_pushes_total', 'Push notifications by provider and result: sent, retried (an attempt repeated), failed (given up), unregistered (the device token was gone)', 'counter', () => {
      const push = ctx.services.find(PUSH_SERVICE)
      if (push === undefined) return []
      const counters = push.counters()
      return push.providers.flatMap(provider => PUSH_RESULTS.map(([result, key]): Sample => [{ provider, result }, counters[provider][key]]))
    }),
    new Sampled('threadline_push_queued', 'Push notifications waiting, in flight or waiting for a retry, by provider', 'gauge', () => {
      const push = ctx.services.find(PUSH_SERVICE)
      if (push === undefined) return []
      const queued = push.queued()
      return PROVIDERS.filter(p => push.providers.includes(p)).map((provider): Sample => [{ provider }, queued[provider]])
    }),
    ...longPollSeries(ctx),
    new Sampled('threadline_store_pool_connections', 'Store connections open (PGlite: one)', 'gauge', () => one(ctx.store.pool().total)),
    new Sampled('threadline_store_pool_idle', 'Store connections no query holds', 'gauge', () => one(ctx.store.pool().idle)),
    new Sampled('threadline_store_pool_waiting', 'Callers waiting for a store connection', 'gauge', () => one(ctx.store.pool().waiting)),
    new Sampled('threadline_store_errors_total', 'Store queries and transactions that failed, by kind: unavailable (unreachable, timed out), refused (a value it cannot hold), conflict (deadlock, serialization; retried), fault', 'counter', () => storeErrors.samples('kind')),
    new Sampled('threadline_redis_up', '1 when every Redis connection of the node answers, 0 when one does not (absent without Redis)', 'gauge', () => {
      const up = brokerState?.redisUp() ?? null
      return up === null ? [] : one(up ? 1 : 0)
    })
  ]
  for (const s of series) s.registerIn(registry)

  return {
    registry,
    deliveries,
    stop: () => { for (const stop of stops) stop() }
  }
}

/** Read at scrape from the long-poll plugin, when it runs (with Redis its queues are the cluster's). */
function longPollSeries (ctx: PluginContext): Sampled[] {
  let last: Promise<LongPollStats | null> | null = null
  // the three series share one read per scrape (with Redis it is a round trip): a scrape
  // asks every series at once, and the read is forgotten once they all have it
  const read = (): Promise<LongPollStats | null> => {
    last ??= (async () => {
      const get = ctx.services.find(LONGPOLL_STATS)
      return get === undefined ? null : await get()
    })().finally(() => { setImmediate(() => { last = null }) })
    return last
  }
  const gauge = (name: string, help: string, pick: (s: LongPollStats) => number): Sampled =>
    new Sampled(name, help, 'gauge', async () => {
      const s = await read()
      return s === null ? [] : [[{}, pick(s)]]
    })
  return [
    gauge('threadline_longpoll_queues', 'Long-poll event queues alive (with Redis: the cluster\'s)', s => s.queues),
    gauge('threadline_longpoll_events', 'Events waiting in long-poll queues (with Redis: the cluster\'s)', s => s.events),
    gauge('threadline_longpoll_held', 'Long polls this node holds open now', s => s.held)
  ]
}
