// Assembles one Threadline node: store, broker state, Aedes, plugins, listeners and the
// sidecar; and takes it down again in order (DESIGN.md §7).
import type net from 'node:net'
// first: mqtt-packet must be loaded by it before Aedes loads it
import './patches/quiet-mqtt-packet-debug.js'
import { Aedes } from 'aedes'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.js'
import { createLogger, type Logger } from './logger.js'
import { MembershipCache } from './membership.js'
import { PluginRegistry } from './registry.js'
import type { PluginContext, ThreadlinePlugin } from './plugin.js'
import { PLUGINS } from './plugins.js'
import { openStore, type Store } from './store/index.js'
import { createBrokerState } from './broker-state.js'
import { boundPublish } from './bounded-publish.js'
import { EventsAudience, eventsConvOf } from './events-audience.js'
import { attachWebSocket, listenTcp } from './listeners.js'
import { logConnections } from './connection-log.js'
import { ProxyTrust } from './client-address.js'
import { ConnectionGate } from './connection-gate.js'
import { SocketBudget } from './socket-budget.js'
import { SOCKET_HEADROOM, listenBacklogCap } from './open-files.js'
import { dropRawChatPackets } from './patches/drop-raw-chat-packets.js'
import { paceSessionReplay } from './patches/write-buffer.js'
import { skipChatRetainedLookups } from './patches/retained-chat-topics.js'
import { resolveJwtSecret } from '../plugins/auth/secret.js'
import { createTokenService, TOKENS_SERVICE, type TokenService } from '../core/tokens.js'
import { SEND_SERVICE, SendService, type Publish as FanOutPublish } from '../core/messages/send-service.js'
import { Services } from '../core/services.js'
import { Telemetry, TELEMETRY } from '../core/telemetry.js'
import { BROKER_STATE } from '../core/broker-state.js'
import { buildApp } from '../sync-api/app.js'
import type { WebBundle } from '../sync-api/web/bundle.js'

export interface Threadline {
  readonly config: Config
  readonly log: Logger
  readonly store: Store
  readonly broker: Aedes
  readonly app: FastifyInstance
  readonly tokens: TokenService
  readonly membership: MembershipCache
  /** the one send path (MQTT and HTTP) */
  readonly sends: SendService
  /** what the plugins provide each other (typed by the keys in core/) */
  readonly services: Services
  /** what the node tells whoever watches it (plugins/metrics, tests) */
  readonly telemetry: Telemetry
  /** MQTT connections past their CONNECT's check, and open sockets of the MQTT and HTTP ports */
  readonly connections: { readonly mqtt: number, readonly sockets: number }
  readonly mqttPort: number
  readonly httpPort: number
  /** Graceful: stop accepting, finish in-flight sends, close sessions, close the store. */
  close(): Promise<void>
}

export interface StartOptions {
  /** the node's plugins (broker/plugins.ts); a test adds its own here and to loadConfig */
  readonly plugins?: ReadonlyArray<ThreadlinePlugin<unknown>>
  /** the web page at `/`; by default built from clients/web into dist/web when first asked for */
  readonly web?: WebBundle
}

export async function startThreadline (config: Config, log: Logger = createLogger(config.logLevel), opts: StartOptions = {}): Promise<Threadline> {
  const telemetry = new Telemetry()
  const store = await openStore(config, log, telemetry)
  const cleanups: Array<() => Promise<void>> = [() => store.close()]
  const unwind = async (): Promise<void> => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((err: unknown) => log.error({ err }, 'shutdown step failed'))
  }
  try {
    const { secret, generatedAt } = await resolveJwtSecret(config)
    if (generatedAt !== null) log.warn({ file: generatedAt }, 'THREADLINE_JWT_SECRET is not set: using a secret generated into the data dir (fine for development, set it in production)')
    const tokens = createTokenService(secret, { issuer: config.jwtIssuer, audience: config.jwtAudience })

    const state = createBrokerState(config, log.child({ part: 'broker-state' }), telemetry)
    cleanups.push(() => state.close())
    const broker = await Aedes.createBroker({
      persistence: state.persistence,
      mq: state.mq,
      // unused while broker/patches/write-buffer.ts replaces every client's wait for
      // drain (bounded by THREADLINE_CLIENT_BUFFER_BYTES); a backstop should that patch go
      drainTimeout: 30_000,
      // clientIds are <sub>:<deviceId>, up to 129 chars, even for MQTT 3.1 clients
      maxClientsIdLength: 129,
      // a socket that sends no CONNECT is closed after this (broker/connection-gate.ts counts it)
      connectTimeout: config.connectTimeoutMs
      // keepaliveLimit stays 0: Aedes would answer CONNACK 6, which MQTT 3.1.1 doesn't
      // have; broker/connection-gate.ts bounds keepalives instead
    })
    state.attach(broker)
    skipChatRetainedLookups((broker as unknown as { persistence: Parameters<typeof skipChatRetainedLookups>[0] }).persistence)
    const closeBroker = (): Promise<void> => new Promise<void>(resolve => broker.close(() => resolve()))
    cleanups.push(closeBroker)
    dropRawChatPackets(broker)
    paceSessionReplay(broker)
    broker.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'client error'))
    broker.on('connectionError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'connection error'))
    // Aedes emits 'error' from its periodic will sweep and from offline enqueueing when
    // the persistence fails (Redis down); unheard, that would end the process
    ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ err }, 'broker error'))

    logConnections(broker, log.child({ part: 'connections' }))

    const membership = new MembershipCache(store, log.child({ part: 'membership' }))
    membership.attach(broker)
    type PublishArgs = [topic: string, payload: Buffer | string, opts?: { qos?: 0 | 1, retain?: boolean }]
    const unbounded = ([topic, payload, opts = {}]: PublishArgs, done: (err?: Error | null) => void): void => {
      broker.publish({
        cmd: 'publish',
        topic,
        payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
        qos: opts.qos ?? 1,
        retain: opts.retain ?? false,
        dup: false
      }, done)
    }
    // With Redis a publish may never call back (a hung Redis); its commands fail after
    // redisTimeoutMs and a retained publish makes two of them, so publishTimeoutMs bounds
    // it. In memory nothing waits on another process (a slow reader is cut off, never
    // waited for: patches/write-buffer.ts), so the hot path skips the bound there.
    const bounded = config.redisUrl !== null ? boundPublish(unbounded, publishTimeoutMs(config)) : null
    if (bounded !== null) cleanups.push(async () => bounded.stop())
    const publish = bounded?.publish ?? ((...args: PublishArgs): Promise<void> =>
      new Promise((resolve, reject) => unbounded(args, (err) => (err ? reject(err) : resolve()))))
    // the send path's fan-out, one publish per recipient: callbacks all the way into Aedes;
    // in memory, conv/<c>/events only when someone could receive it (events-audience.ts)
    let fanOut: FanOutPublish
    if (bounded !== null) {
      fanOut = (topic, payload, done) => bounded.publishWithCallback([topic, payload], done)
    } else {
      const audience = new EventsAudience(broker)
      // the packet is built here rather than through `unbounded`: no argument tuple per
      // recipient (folded together, two max-phase runs measured 39–44 µs/msg of broker CPU
      // against 33–34 before; not told apart from noise, so left as it was)
      fanOut = (topic, payload, done) => {
        const conv = eventsConvOf(topic)
        if (conv !== null && !audience.mayReach(topic, conv)) return done()
        broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, done)
      }
    }

    const sends = new SendService(store, fanOut, log.child({ part: 'sends' }), telemetry, { commitConcurrency: config.commitConcurrency, commitGatherMs: config.commitGatherMs })
    cleanups.push(() => sends.drain())
    const services = new Services()
    services.provide(TELEMETRY, telemetry)
    services.provide(TOKENS_SERVICE, tokens)
    services.provide(SEND_SERVICE, sends)
    services.provide(BROKER_STATE, { redisUp: () => state.redisUp(), sessionsAway: () => state.sessionsAway() })
    const ctx: PluginContext = { config, log, store, broker, membership, publish, services }
    const registry = new PluginRegistry()
    for (const plugin of opts.plugins ?? PLUGINS) registry.register(plugin)
    await registry.start(broker, ctx, { sends })
    cleanups.push(() => registry.stop())
    const gate = new ConnectionGate(config, telemetry, log.child({ part: 'connections' }))
    gate.install(broker)

    const app = await buildApp({
      config,
      log,
      store,
      tokens,
      membership,
      publish,
      sends,
      routes: registry.routes,
      http: registry.http,
      web: opts.web,
      checks: state.ping !== null ? [{ name: 'redis', check: state.ping }] : []
    })
    cleanups.push(() => app.close())
    const budget = new SocketBudget(config.maxConnections + SOCKET_HEADROOM, telemetry, log.child({ part: 'connections' }))
    await app.listen({ port: config.httpPort, host: config.host, backlog: budget.backlog })
    const limits = { maxPayloadBytes: config.maxPayloadBytes, clientBufferBytes: config.clientBufferBytes }
    const entry = {
      budget,
      trust: new ProxyTrust(config.trustProxy),
      connectTimeoutMs: config.connectTimeoutMs,
      telemetry
    }
    const upgrades = attachWebSocket(broker, app.server, limits, entry, log)
    const tcp = await listenTcp(broker, config.mqttPort, config.host, limits, entry, log)
    // not awaited: server.close() waits for open connections, which closeBroker ends
    cleanups.push(async () => { tcp.close() })

    const mqttPort = (tcp.address() as net.AddressInfo).port
    const httpPort = (app.server.address() as net.AddressInfo).port
    // trustProxy named here: a node that trusts a proxy refuses its MQTT connections that carry no PROXY header
    const trusting = config.trustProxy.length > 0 ? { trustProxy: config.trustProxy } : {}
    const backlogCap = listenBacklogCap()
    const listenBacklog = backlogCap === null ? budget.backlog : Math.min(budget.backlog, backlogCap)
    // as Redis warns of its tcp-backlog: said once, at startup, where an operator looks
    if (listenBacklog < budget.backlog) {
      log.info({ listenBacklog, asked: budget.backlog }, `listen backlog capped by net.core.somaxconn: a reconnect storm of more than ${listenBacklog} devices at once waits for SYN retransmits; for a node this size, sysctl -w net.core.somaxconn=${budget.backlog}`)
    }
    log.info({ mqttPort, httpPort, host: config.host, maxConnections: config.maxConnections, listenBacklog, ...trusting, store: store.driver, redis: config.redisUrl !== null, plugins: registry.names }, 'threadline is up')

    let closing: Promise<void> | null = null
    return {
      config,
      log,
      store,
      broker,
      app,
      tokens,
      membership,
      sends,
      services,
      telemetry,
      connections: {
        get mqtt () { return gate.open },
        get sockets () { return entry.budget.open }
      },
      mqttPort,
      httpPort,
      close: () => (closing ??= (async () => {
        cleanups.length = 0
        const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
          await fn().catch((err: unknown) => log.error({ err, step: name }, 'shutdown step failed'))
        }
        // stop accepting new MQTT connections and WebSocket upgrades
        tcp.close()
        upgrades.stopAccepting()
        // let accepted sends commit before their sessions go away, then close sessions
        await step('drain sends', () => sends.drain())
        await step('close sessions', closeBroker)
        await step('stop plugins', () => registry.stop())
        // HTTP last: waits for requests in flight (an HTTP send among them)
        await step('close http', () => closeHttp(app))
        await step('close broker state', () => state.close())
        bounded?.stop()
        await step('close store', () => store.close())
        log.info('threadline stopped')
      })())
    }
  } catch (err) {
    await unwind()
    throw err
  }
}

/** how long requests in flight may take to finish once a node is closing */
export const HTTP_CLOSE_GRACE_MS = 3000

/**
 * Fastify's close() waits for requests in flight (an HTTP send among them) and closes idle
 * keep-alive connections, but a connection that never sent a request (a browser's
 * preconnect, a probe) is not idle to Node: it would hold the close until the headers
 * timeout, a minute. Whatever is still open after the grace is closed.
 */
async function closeHttp (app: FastifyInstance): Promise<void> {
  const force = setTimeout(() => app.server.closeAllConnections(), HTTP_CLOSE_GRACE_MS)
  try {
    await app.close()
  } finally {
    clearTimeout(force)
  }
}

/** how long a publish handed to the plugins may take before it fails (see bounded-publish.ts) */
export const publishTimeoutMs = (config: Pick<Config, 'redisTimeoutMs'>): number => 2 * config.redisTimeoutMs + 1000
