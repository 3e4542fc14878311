// The one place plugins are wired into Aedes, the send service and the sidecar. Aedes
// has one slot per hook; the registry keeps a list per hook, checks declared
// dependencies, and composes each list into the single callback Aedes takes (first
// denial wins; an authorizePublish hook that answers ANSWERED ends the packet's chain
// with an acknowledgement). Lifecycle hooks are fanned out to every plugin that has one.
import type { Aedes, AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes'
import type { FastifyPluginAsync } from 'fastify'
import type { ConnectInfo, Hooks, MaybePromise, PluginContext, Teardown, ThreadlinePlugin } from './plugin.js'
import { ConnectRefusal } from './plugin.js'
import { noteTakeover, trackLifecycle } from './lifecycle.js'
import { clientAddressOf } from './client-address.js'
import { answerInOrder, isPromise, runInOrder } from './publish-order.js'
import type { SendService } from '../core/messages/send-service.js'

type HookLists = { [K in keyof Hooks]-?: Array<NonNullable<Hooks[K]>> }

const ORIGINAL_CLIENT_ID = Symbol('threadline.originalClientId')
type ClientWithConnectInfo = Client & { [ORIGINAL_CLIENT_ID]?: string }

/** Runs hooks in order, synchronously for as long as they answer synchronously. */
function runChain<A extends unknown[]> (fns: Array<(...args: A) => MaybePromise<void>>, args: A, done: (err: Error | null) => void): void {
  let i = 0
  const next = (): void => {
    try {
      while (i < fns.length) {
        const r = (fns[i++] as (...args: A) => MaybePromise<void>)(...args)
        if (isPromise(r)) {
          r.then(next, (err: Error) => done(err))
          return
        }
      }
    } catch (err) {
      done(err as Error)
      return
    }
    done(null)
  }
  next()
}

/** What the registry wires besides Aedes' hooks. */
export interface Wiring {
  /** the send path, whose committed batches feed eventsCommitted */
  readonly sends: Pick<SendService, 'onCommitted'>
}

export class PluginRegistry {
  readonly #plugins: Array<ThreadlinePlugin<unknown>> = []
  readonly #teardowns: Teardown[] = []
  readonly #routes: FastifyPluginAsync[] = []
  readonly #http: FastifyPluginAsync[] = []

  register (plugin: ThreadlinePlugin<unknown>): this {
    if (this.#plugins.some(p => p.name === plugin.name)) throw new Error(`plugin ${plugin.name} registered twice`)
    for (const dep of plugin.dependencies ?? []) {
      if (!this.#plugins.some(p => p.name === dep)) {
        throw new Error(`plugin ${plugin.name} needs ${dep}: register ${dep} before it`)
      }
    }
    this.#plugins.push(plugin)
    return this
  }

  get names (): string[] { return this.#plugins.map(p => p.name) }

  /**
   * Sets every plugin up in order (each gets its options from config.plugins), then
   * installs the composed hooks on the broker and subscribes the lifecycle hooks.
   */
  async start (broker: Aedes, ctx: PluginContext, wiring: Wiring): Promise<void> {
    const lists: HookLists = {
      authenticate: [],
      authorizePublish: [],
      authorizeSubscribe: [],
      authorizeForward: [],
      clientReady: [],
      clientGone: [],
      eventsCommitted: [],
      membershipChanged: []
    }
    for (const plugin of this.#plugins) {
      const options = optionsOf(plugin, ctx)
      const teardown = await plugin.setup?.(ctx, options)
      if (teardown) this.#teardowns.push(teardown)
      const hooks = plugin.hooks?.(ctx, options) ?? {}
      for (const key of Object.keys(lists) as Array<keyof Hooks>) {
        const hook = hooks[key]
        if (hook) (lists[key] as unknown[]).push(hook)
      }
      const routes = plugin.routes?.(ctx, options)
      if (routes) this.#routes.push(routes)
      const http = plugin.http?.(ctx, options)
      if (http) this.#http.push(http)
    }
    install(broker, lists, ctx)
    const log = ctx.log.child({ part: 'plugins' })
    trackLifecycle(broker, {
      ready: (client) => tell(log, 'clientReady', lists.clientReady, [client]),
      gone: (client, reason) => tell(log, 'clientGone', lists.clientGone, [client, reason])
    })
    if (lists.eventsCommitted.length > 0) {
      this.#teardowns.push(wiring.sends.onCommitted((events) => tell(log, 'eventsCommitted', lists.eventsCommitted, [events])))
    }
    if (lists.membershipChanged.length > 0) {
      this.#teardowns.push(ctx.membership.onChange((change) => tell(log, 'membershipChanged', lists.membershipChanged, [change])))
    }
  }

  /** The plugins' REST routes, for the sidecar to mount under /v1 (after start). */
  get routes (): readonly FastifyPluginAsync[] { return this.#routes }

  /** The plugins' sidecar-wide hooks and root routes (ThreadlinePlugin.http), after start. */
  get http (): readonly FastifyPluginAsync[] { return this.#http }

  async stop (): Promise<void> {
    for (const teardown of this.#teardowns.splice(0).reverse()) await teardown()
  }
}

function optionsOf (plugin: ThreadlinePlugin<unknown>, ctx: PluginContext): unknown {
  if (plugin.config === undefined) return undefined
  if (!(plugin.name in ctx.config.plugins)) {
    throw new Error(`plugin ${plugin.name} has configuration that was not loaded: pass the plugin list to loadConfig`)
  }
  return ctx.config.plugins[plugin.name]
}

/** Calls every listener; a failure is logged and stops nobody else. */
function tell<A extends unknown[]> (log: PluginContext['log'], hook: string, listeners: ReadonlyArray<(...args: A) => MaybePromise<void>>, args: A): void {
  for (const listener of listeners) {
    try {
      const r = listener(...args)
      if (isPromise(r)) r.catch((err: unknown) => log.error({ err, hook }, 'plugin hook failed'))
    } catch (err) {
      log.error({ err, hook }, 'plugin hook failed')
    }
  }
}

function install (broker: Aedes, lists: HookLists, ctx: PluginContext): void {
  broker.preConnect = (client, packet, callback) => {
    // Aedes replaces an empty clientId with a generated one before authenticate runs;
    // [MQTT-3.1.3-8] needs to know it was empty.
    (client as ClientWithConnectInfo)[ORIGINAL_CLIENT_ID] = packet.clientId
    callback(null, true)
  }

  broker.authenticate = (client, username, password, callback) => {
    const info: ConnectInfo = {
      clientId: (client as ClientWithConnectInfo)[ORIGINAL_CLIENT_ID] ?? client.id,
      clean: client.clean,
      username: username ?? undefined,
      password: password ?? undefined
    }
    runChain(lists.authenticate, [client, info], (err) => {
      if (err === null) {
        noteTakeover(broker, client)
        return callback(null, true)
      }
      const returnCode = err instanceof ConnectRefusal ? err.returnCode : 3
      if (err instanceof ConnectRefusal) {
        // a refusal's message says what the client got wrong, never what it sent as a password
        ctx.log.info({ clientId: client.id, ip: clientAddressOf(client), returnCode, reason: err.message }, 'connect refused')
      } else {
        ctx.log.error({ err, clientId: client.id }, 'authenticate failed')
      }
      callback(Object.assign(err, { returnCode }), false)
    })
  }

  broker.authorizePublish = (client, packet, callback) => {
    // Keep Aedes' own protection of $SYS/ (its default authorizePublish)
    if (packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS/ topic is reserved'))
    if (client === null) return callback(null) // wills and broker-originated packets
    answerInOrder(client, (cb) => runInOrder(lists.authorizePublish, [client, packet as PublishPacket], cb), callback)
  }

  broker.authorizeSubscribe = (client, sub, callback) => {
    let current: Subscription | null = sub
    let i = 0
    const next = (): void => {
      while (current !== null && i < lists.authorizeSubscribe.length) {
        let r: MaybePromise<Subscription | null>
        try {
          r = (lists.authorizeSubscribe[i++] as NonNullable<Hooks['authorizeSubscribe']>)(client, current)
        } catch (err) {
          ctx.log.warn({ err, clientId: client.id, topic: sub.topic }, 'subscribe check failed')
          return callback(null, null)
        }
        if (isPromise(r)) {
          r.then((s) => { current = s; next() }, (err: Error) => {
            ctx.log.warn({ err, clientId: client.id, topic: sub.topic }, 'subscribe check failed')
            callback(null, null)
          })
          return
        }
        current = r
      }
      // null → SUBACK 0x80 for this topic; the connection stays up (DESIGN.md §3)
      callback(null, current)
    }
    next()
  }

  broker.authorizeForward = (client, packet) => {
    let current: AedesPublishPacket = packet
    for (const hook of lists.authorizeForward) {
      const r = hook(client, current)
      if (r === null) return null
      current = r
    }
    return current
  }
}
