// Whether this node's Redis connections answer. A Redis that hangs (a blocked server, a
// stopped process, a path that drops packets) closes nothing, so ioredis never notices:
// commands fail by `commandTimeout`, but a subscriber connection sends no commands of its
// own and would wait for pushes forever. Each connection is pinged on a timer (PING is
// allowed in subscriber mode) and a PING unanswered after `timeoutMs` fails here, whether
// or not the connection has a commandTimeout (the subscriber has none, see
// broker-state.ts); one that is
// ready yet lets a PING time out is hung, and is made to reconnect: then a hang is handled
// as the outage it is (the membership cache sees the subscriber drop and reads the store
// again, ioredis resubscribes), and a connection left half-open for good is replaced.
import type { Redis } from 'ioredis'
import type { Logger } from './logger.js'

// ioredis' commandTimeout error: "Command timed out"
const TIMED_OUT = /timed out/i
const SETTING_UP_OR_READY = new Set(['wait', 'connecting', 'connect', 'ready'])

interface Watched {
  name: string
  redis: Redis
  healthy: boolean
  pinging: boolean
  /** the socket last dropped for hanging: a burst of timed-out commands drops it once */
  dropped?: unknown
}

export class RedisLiveness {
  readonly #conns: Watched[]
  readonly #log: Logger
  readonly #timer: NodeJS.Timeout

  readonly #timeoutMs: number

  /** `timeoutMs`: how long a PING may go unanswered, and the time between PINGs of one connection */
  constructor (conns: ReadonlyArray<{ name: string, redis: Redis }>, timeoutMs: number, log: Logger) {
    this.#conns = conns.map(c => ({ ...c, healthy: true, pinging: false }))
    this.#log = log
    this.#timeoutMs = timeoutMs
    this.#timer = setInterval(() => { for (const c of this.#conns) this.#probe(c) }, timeoutMs).unref()
  }

  /**
   * false from a failed PING or command until a PING is answered again, and while the
   * connection is down; true while it is first being set up (commands wait for it then)
   */
  isUp (name: string): boolean {
    const c = this.#conns.find(c => c.name === name)
    return c !== undefined && c.healthy && SETTING_UP_OR_READY.has(c.redis.status)
  }

  /** A command on `name` failed: if it timed out, count the connection as hung without waiting for the next PING. */
  hung (name: string, err: Error): void {
    const c = this.#conns.find(c => c.name === name)
    if (c !== undefined) this.#down(c, err)
  }

  /** Readiness: resolves when every connection answers a PING now; rejects naming those that don't. */
  async check (): Promise<void> {
    const results = await Promise.allSettled(this.#conns.map(c =>
      c.redis.status === 'ready' ? this.#ping(c) : Promise.reject(new Error(`connection ${c.redis.status}`))))
    const down = this.#conns.filter((_c, i) => results[i]?.status === 'rejected').map(c => c.name)
    if (down.length > 0) throw new Error(`Redis does not answer on ${down.join(', ')}`)
  }

  stop (): void { clearInterval(this.#timer) }

  #probe (c: Watched): void {
    // not connected: ioredis is reconnecting on its own, and a PING would only wait in its offline queue
    if (c.pinging || c.redis.status !== 'ready') return
    c.pinging = true
    this.#ping(c).then(() => {
      if (!c.healthy) this.#log.info({ connection: c.name }, 'Redis answers again')
      c.healthy = true
    }, (err: Error) => this.#down(c, err)).finally(() => { c.pinging = false })
  }

  async #ping (c: Watched): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([c.redis.ping(), new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`PING timed out after ${this.#timeoutMs} ms`)), this.#timeoutMs)
      })])
    } finally {
      clearTimeout(timer)
    }
  }

  #down (c: Watched, err: Error): void {
    // a closed connection is ioredis' to handle (status says so); a timeout on a ready one
    // means Redis holds the connection and answers nothing
    if (!TIMED_OUT.test(err.message)) return
    if (c.healthy) this.#log.warn({ connection: c.name, err: err.message }, 'Redis does not answer: reconnecting; sends go on, other nodes catch up from history')
    c.healthy = false
    const socket = (c.redis as unknown as { stream?: unknown }).stream
    if (c.redis.status === 'ready' && socket !== c.dropped) {
      c.dropped = socket
      c.redis.disconnect(true)
    }
  }
}
