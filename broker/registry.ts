// The one place plugins are wired into Aedes. Aedes has one slot per hook; the registry
// keeps a list per hook, checks declared dependencies, and composes each list into the
// single callback Aedes takes (first denial wins).
import type { Aedes, AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes'
import type { ConnectInfo, Hooks, MaybePromise, PluginContext, Teardown, ThreadlinePlugin } from './plugin.js'
import { ConnectRefusal } from './plugin.js'

type HookLists = { [K in keyof Hooks]-?: Array<NonNullable<Hooks[K]>> }

const ORIGINAL_CLIENT_ID = Symbol('threadline.originalClientId')
const ACK_TAIL = Symbol('threadline.ackTail')
type ClientWithConnectInfo = Client & { [ORIGINAL_CLIENT_ID]?: string, [ACK_TAIL]?: Promise<void> | null }

function isPromise<T> (v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | undefined)?.then === 'function'
}

/**
 * Runs hooks in order and stays synchronous for as long as they answer synchronously.
 * That matters: Aedes dispatches all packets of one socket read concurrently, so a
 * hook chain that always hopped through the microtask queue could still keep order,
 * but one that awaits real I/O for one packet and not for the next would reorder
 * them. Sync hooks make "arrival order in = arrival order out" hold by construction.
 */
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

/**
 * [MQTT-4.6.0-2]: PUBACKs leave in the order the PUBLISHes came. Aedes acknowledges
 * when authorizePublish calls back, and a send waiting for its commit calls back later
 * than a rejected one behind it would, so a packet's answer waits for the answer of
 * the packet before it. Packets answered synchronously with nothing pending skip this.
 */
function inArrivalOrder (client: ClientWithConnectInfo, run: (cb: (err: Error | null) => void) => void, callback: (err: Error | null) => void): void {
  const before = client[ACK_TAIL] ?? null
  let outcome: { err: Error | null } | undefined
  let wake: ((o: { err: Error | null }) => void) | undefined
  run((err) => {
    if (wake) wake({ err })
    else outcome = { err }
  })
  if (outcome !== undefined && before === null) return callback(outcome.err)
  const mine = (async () => {
    const o = outcome ?? await new Promise<{ err: Error | null }>(resolve => { wake = resolve })
    if (before !== null) await before
    callback(o.err)
  })()
  client[ACK_TAIL] = mine
  void mine.finally(() => { if (client[ACK_TAIL] === mine) client[ACK_TAIL] = null })
}

export class PluginRegistry {
  readonly #plugins: ThreadlinePlugin[] = []
  readonly #teardowns: Teardown[] = []

  register (plugin: ThreadlinePlugin): this {
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

  /** Sets every plugin up in order, then installs the composed hooks on the broker. */
  async start (broker: Aedes, ctx: PluginContext): Promise<void> {
    const lists: HookLists = { authenticate: [], authorizePublish: [], authorizeSubscribe: [], authorizeForward: [] }
    for (const plugin of this.#plugins) {
      const teardown = await plugin.setup?.(ctx)
      if (teardown) this.#teardowns.push(teardown)
      const hooks = plugin.hooks?.(ctx) ?? {}
      for (const key of Object.keys(lists) as Array<keyof Hooks>) {
        const hook = hooks[key]
        if (hook) (lists[key] as unknown[]).push(hook)
      }
    }
    install(broker, lists, ctx)
  }

  async stop (): Promise<void> {
    for (const teardown of this.#teardowns.splice(0).reverse()) await teardown()
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
      if (err === null) return callback(null, true)
      const returnCode = err instanceof ConnectRefusal ? err.returnCode : 3
      if (!(err instanceof ConnectRefusal)) ctx.log.error({ err, clientId: client.id }, 'authenticate failed')
      callback(Object.assign(err, { returnCode }), false)
    })
  }

  broker.authorizePublish = (client, packet, callback) => {
    // Keep Aedes' own protection of $SYS/ (its default authorizePublish)
    if (packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS/ topic is reserved'))
    if (client === null) return callback(null) // wills and broker-originated packets
    inArrivalOrder(client as ClientWithConnectInfo, (cb) => runChain(lists.authorizePublish, [client, packet as PublishPacket], cb), callback)
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
