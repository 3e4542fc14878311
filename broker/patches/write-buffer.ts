// Upstream behaviour worked around: Aedes' write() (aedes/lib/write.js) calls back only
// once the socket drains when mqtt-packet's writeToStream returns false
// (`client.waitForDrain`, aedes/lib/client.js), and mqemitter waits for every
// subscriber's callback before it emits the next packet. One client that stops reading
// therefore stalls delivery to everybody on the node, up to Aedes' `drainTimeout`.
//
// Here a write never waits: what the stream could not hand to the kernel stays buffered
// in it, and once more than `maxBytes` wait for one client, its connection is destroyed.
// QoS 1 packets of a persistent session stay in its outgoing store until PUBACKed, so the
// client gets them again when it reconnects; the event store keeps everything durable.
// test/broker/patches.test.ts and test/broker/slow-consumer.test.ts fail if Aedes changes
// these internals.
import { Readable } from 'node:stream'
import type { Logger } from '../logger.js'

const ENDED = Symbol('threadline.slowClient')

/** The parts of an Aedes client the bound relies on. */
interface DrainingClient<C> {
  id: string | null
  conn: C
  waitForDrain(done: (err: Error | null, client: unknown) => void): void
  /** set once the bound ended the connection */
  [ENDED]?: SlowClient
}

export class SlowClient extends Error {
  constructor (readonly buffered: number, readonly limit: number) {
    super(`${buffered} bytes wait for this client, over the limit of ${limit} (THREADLINE_CLIENT_BUFFER_BYTES)`)
    this.name = 'SlowClient'
  }
}

/** One per listener, shared by its connections (`conn`: the stream Aedes reads and writes). */
export interface WriteBufferBound<C = never> {
  maxBytes: number
  /** bytes written to the client's connection that have not reached the kernel yet */
  buffered(conn: C): number
  /** ends the connection; Aedes closes the client on the stream's error */
  destroy(conn: C, err: Error): void
  log: Logger
}

/** one wait per bound, shared by every client given it: no closures per connection */
const waits = new WeakMap<object, (done: (err: Error | null, client: unknown) => void) => void>()

/** Replaces the client's wait for 'drain' by a bound on the bytes waiting for it. */
export function boundWriteBuffer<C> (client: unknown, bound: WriteBufferBound<C>): void {
  const c = client as DrainingClient<C>
  if (typeof c.waitForDrain !== 'function' || c.conn === undefined) {
    throw new Error('Aedes client internals changed: broker/patches/write-buffer.ts needs an update')
  }
  let wait = waits.get(bound)
  if (wait === undefined) waits.set(bound, wait = waitFor(bound))
  c.waitForDrain = wait
}

function waitFor<C> (bound: WriteBufferBound<C>): DrainingClient<C>['waitForDrain'] {
  // Aedes calls it as a method of the client (aedes/lib/write.js)
  return function waitForDrain (this: DrainingClient<C>, done) {
    // writes racing the close of a connection this bound ended fail quietly
    const ended = this[ENDED]
    if (ended !== undefined) return setImmediate(done, ended, this)
    const buffered = bound.buffered(this.conn)
    if (buffered <= bound.maxBytes) return setImmediate(done, null, this)
    const err = this[ENDED] = new SlowClient(buffered, bound.maxBytes)
    bound.log.warn({ clientId: this.id, buffered, limit: bound.maxBytes }, 'client does not read: disconnecting it')
    bound.destroy(this.conn, err)
    setImmediate(done, err, this)
  }
}

/** The parts of Aedes' persistence and client the replay pacing relies on. */
interface ReplayingBroker {
  persistence: { outgoingStream(client: unknown): AsyncIterable<unknown> }
}
interface Connection {
  writableNeedDrain?: boolean
  destroyed?: boolean
  once(event: string, fn: () => void): unknown
  off(event: string, fn: () => void): unknown
}

function drainedOrClosed (conn: Connection): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      conn.off('drain', done)
      conn.off('close', done)
      resolve()
    }
    conn.once('drain', done)
    conn.once('close', done)
  })
}

/**
 * Upstream behaviour worked around: at CONNECT, Aedes writes a persistent session's
 * queue (`persistence.outgoingStream`, aedes/lib/handlers/connect.js `emptyQueue`) one
 * packet after the other, relying on write() waiting for drain. Without that wait
 * (boundWriteBuffer) a queue larger than the bound would be written at once and the
 * client disconnected on every reconnect, never catching up.
 *
 * The queue is only this client's, so here waiting delays no one else: each packet is
 * handed on once the connection has room again. A few packets (the stream's read-ahead)
 * may still be in flight past that point, well within the bound.
 */
export function paceSessionReplay (broker: unknown): void {
  const persistence = (broker as ReplayingBroker).persistence
  if (typeof persistence?.outgoingStream !== 'function') {
    throw new Error('Aedes persistence internals changed: broker/patches/write-buffer.ts needs an update')
  }
  const outgoingStream = persistence.outgoingStream.bind(persistence)
  persistence.outgoingStream = (client) => {
    const source = outgoingStream(client)
    const conn = (client as { conn?: Connection }).conn
    if (conn === undefined) return source // not a live client: a look into the store
    return Readable.from((async function * paced () {
      for await (const packet of source) {
        if (conn.writableNeedDrain === true && conn.destroyed !== true) await drainedOrClosed(conn)
        yield packet
      }
    })(), { highWaterMark: 1 })
  }
}
