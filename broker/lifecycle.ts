// Client ready / client gone, with the reason a client went (the plugins' lifecycle
// hooks). Aedes tells that a client went (clientDisconnect) but not why: the reason is
// pieced together from what happened before — a DISCONNECT packet, a keepalive timeout,
// a newer connection with the same clientId, a token that expired, the broker closing.
import type { Aedes, Client } from 'aedes'
import type { GoneReason } from './plugin.js'

const GONE_REASON = Symbol('threadline.goneReason')
const clientsOf = (broker: Aedes): Record<string, Client | undefined> => (broker as unknown as { clients: Record<string, Client | undefined> }).clients
type Marked = Client & { [GONE_REASON]?: GoneReason, _disconnected?: boolean, closed?: boolean }

/** Records why the server is about to close `client` (the first reason given stands). */
export function markGone (client: Client, reason: GoneReason): void {
  (client as Marked)[GONE_REASON] ??= reason
}

function reasonOf (broker: Aedes, client: Marked): GoneReason {
  const marked = client[GONE_REASON]
  if (marked !== undefined) return marked
  if (client._disconnected === true) return 'disconnect' // Aedes sets it on a DISCONNECT packet
  return broker.closed ? 'shutdown' : 'error'
}

export interface LifecycleListeners {
  ready(client: Client): void
  gone(client: Client, reason: GoneReason): void
}

const READY = Symbol('threadline.ready')
type Tracked = Marked & { [READY]?: boolean }

/** every broker's listeners: Aedes' events are subscribed once per broker, whoever listens */
const tracked = new WeakMap<Aedes, LifecycleListeners[]>()

/**
 * Calls `listeners.gone` once for each client `listeners.ready` was called for, so
 * plugins can count a user's devices without ever going negative.
 */
export function trackLifecycle (broker: Aedes, listeners: LifecycleListeners): void {
  const all = tracked.get(broker)
  if (all !== undefined) {
    all.push(listeners)
    return
  }
  const every: LifecycleListeners[] = [listeners]
  tracked.set(broker, every)
  broker.on('clientReady', (client) => {
    // the connection may have ended while its session was being restored
    if ((client as Marked).closed === true) return
    // a flag on the client rather than a WeakSet entry: every idle session keeps it
    ;(client as Tracked)[READY] = true
    for (const l of every) l.ready(client)
  })
  // clientIds another node has just taken: Aedes' listener for that announcement may
  // have closed the client here synchronously, before the listener below ran
  const takenElsewhere = new Set<string>()
  broker.on('clientDisconnect', (client) => {
    if ((client as Tracked)[READY] !== true) return
    ;(client as Tracked)[READY] = false
    // a microtask later, the takeover announcement's listeners have all run
    queueMicrotask(() => {
      if (takenElsewhere.has(client.id)) markGone(client, 'takeover')
      const reason = reasonOf(broker, client as Marked)
      for (const l of every) l.gone(client, reason)
    })
  })
  broker.on('keepaliveTimeout', (client) => { markGone(client, 'keepalive') })
  // A connection with the same clientId on another node: Aedes closes the one here when
  // that node announces its new client on $SYS/<node>/new/clients. This listener runs
  // in the same synchronous dispatch as Aedes' own, which may have closed it already.
  const mq = (broker as unknown as { mq: { on(topic: string, fn: (packet: { topic: string, payload: Buffer | string }, cb: () => void) => void): void } }).mq
  mq.on('$SYS/+/new/clients', (packet, cb) => {
    const nodeId = packet.topic.split('/')[1]
    const clientId = packet.payload.toString()
    const existing = clientsOf(broker)[clientId]
    if (nodeId !== broker.id) {
      if (existing !== undefined) markGone(existing, 'takeover')
      takenElsewhere.add(clientId)
      queueMicrotask(() => takenElsewhere.delete(clientId))
    }
    cb()
  })
}

const closeListeners = new WeakMap<Aedes, Array<(client: Client) => void>>()

/**
 * Calls `fn(client)` when the connection of a client of `broker` closes, whether it got
 * as far as a session or not: once per connection that Aedes made a client for.
 */
export function onConnectionClosed (broker: Aedes, fn: (client: Client) => void): void {
  const fns = closeListeners.get(broker)
  if (fns === undefined) closeListeners.set(broker, [fn])
  else fns.push(fn)
}

/**
 * Tells onConnectionClosed's listeners that `conn` closed. listeners.ts calls it from the
 * one 'close' listener each connection has (on TCP the socket budget's): one shared
 * function rather than a closure per part that cares, and no third listener next to
 * Aedes' own, which would grow the connection's listener array (~150 B per connection).
 */
export function connectionClosed (conn: object): void {
  const client = (conn as { client?: Client }).client // Aedes links each connection to its client
  if (client === undefined) return
  const fns = closeListeners.get((client as unknown as { broker: Aedes }).broker)
  if (fns !== undefined) for (const fn of fns) fn(client)
}

/** Call when `client` is authenticated: an older connection with its clientId on this node is about to be taken over. */
export function noteTakeover (broker: Aedes, client: Client): void {
  const existing = clientsOf(broker)[client.id]
  if (existing !== undefined && existing !== client) markGone(existing, 'takeover')
}
