// Idle-session expiry of DESIGN.md §2: a persistent session (clean=false) whose client has
// been away longer than THREADLINE_SESSION_EXPIRY_S is removed (subscriptions, offline
// queue, inflight), so a device that never comes back stops costing memory. Aedes' own
// sessions never expire. The device reconnects to "session present = 0", subscribes again
// and fills its seq gap from history.
//
// Each node records when a persistent client disconnects and forgets it when it connects;
// a sweep on every node claims what is older than the expiry. With Redis the index is
// shared (broker/session-expiry-redis.ts) and a claim is atomic, so two nodes never remove
// the same session twice, a session left by a stopped node still expires, and so does one
// whose node was killed while it was connected (the node's liveness runs out).
import type { Aedes, Client } from 'aedes'
import type { Logger } from './logger.js'

export interface IdleIndex {
  /**
   * `conn` numbers the connection on this node (a shared index names it with the node's
   * id), so that a late disconnect of a connection taken over elsewhere is ignored.
   */
  connected(clientId: string, conn: number): Promise<void>
  disconnected(clientId: string, conn: number, atMs: number): Promise<void>
  /** A clean=true CONNECT ended the session: nothing left to expire. */
  forget(clientId: string): Promise<void>
  /** How many sessions the index holds as disconnected (with Redis: the cluster's). */
  idle(): Promise<number>
  /** Removes from the index, and returns, up to `limit` sessions idle since before `cutoffMs`. */
  claimExpired(cutoffMs: number, limit: number): Promise<string[]>
  /** Shared indexes only: this node is alive for `ttlMs` more; false if it had been given up for dead. */
  alive?(nodeId: string, ttlMs: number): Promise<boolean>
  /** Shared indexes only: sessions still owned by nodes no longer alive count as disconnected at `atMs`. */
  reclaimOrphans?(atMs: number): Promise<number>
}

export class MemoryIdleIndex implements IdleIndex {
  // insertion order is disconnect order: a sweep stops at the first one still young
  readonly #since = new Map<string, number>()
  readonly #owner = new Map<string, number>()

  async connected (clientId: string, conn: number): Promise<void> {
    this.#owner.set(clientId, conn)
    this.#since.delete(clientId)
  }

  async disconnected (clientId: string, conn: number, atMs: number): Promise<void> {
    const owner = this.#owner.get(clientId)
    if (owner !== undefined && owner !== conn) return
    this.#owner.delete(clientId)
    this.#since.delete(clientId)
    this.#since.set(clientId, atMs)
  }

  async forget (clientId: string): Promise<void> {
    this.#owner.delete(clientId)
    this.#since.delete(clientId)
  }

  async idle (): Promise<number> {
    return this.#since.size
  }

  async claimExpired (cutoffMs: number, limit: number): Promise<string[]> {
    const claimed: string[] = []
    for (const [clientId, since] of this.#since) {
      if (since >= cutoffMs || claimed.length === limit) break
      claimed.push(clientId)
    }
    for (const clientId of claimed) this.#since.delete(clientId)
    return claimed
  }
}

const SWEEP_BATCH = 100
const SWEEP_MAX_INTERVAL_MS = 60_000
const STOP_WAIT_MS = 5_000

/**
 * Watches a broker's persistent clients and removes sessions idle past `expiryS`.
 * Emits `sessionExpired` (clientId) on the broker for each removed session.
 */
// a persistent client's connection number, as a property rather than a WeakMap entry:
// every idle session keeps it
const CONN = Symbol('threadline.sessionConn')
type Numbered = Client & { [CONN]?: number }

export class SessionExpiry {
  #connCount = 0
  #timer: NodeJS.Timeout | null = null
  #intervalMs = SWEEP_MAX_INTERVAL_MS
  #sweeping: Promise<void> | null = null
  readonly #recording = new Set<Promise<void>>()

  constructor (
    private readonly broker: Aedes,
    private readonly index: IdleIndex,
    /** removes what the persistence holds of one session */
    private readonly remove: (clientId: string) => Promise<void>,
    private readonly expiryS: number,
    private readonly isConnected: (clientId: string) => boolean,
    private readonly log: Logger
  ) {}

  start (): void {
    this.broker.on('client', (client) => {
      if (client.clean) {
        this.#record(this.index.forget(client.id), 'clean connect', client.id)
        return
      }
      const conn = ++this.#connCount
      ;(client as Numbered)[CONN] = conn
      this.#record(this.index.connected(client.id, conn), 'connect', client.id)
    })
    this.broker.on('clientDisconnect', (client) => {
      const conn = (client as Numbered)[CONN]
      if (conn === undefined) return // a clean session, or one that never finished connecting
      this.#record(this.index.disconnected(client.id, conn, Date.now()), 'disconnect', client.id)
    })
    // half the expiry, so a session goes at most 1.5 × the expiry after its disconnect
    this.#intervalMs = Math.min(SWEEP_MAX_INTERVAL_MS, Math.max(100, this.expiryS * 500))
    this.#sweeping = this.#heartbeat(true).finally(() => { this.#sweeping = null })
    this.#timer = setInterval(() => { void this.sweep() }, this.#intervalMs)
    this.#timer.unref()
  }

  /** Persistent sessions whose device is away: this node's in memory, the cluster's with Redis. */
  away (): Promise<number> {
    return this.index.idle()
  }

  /** One pass; resolves when it is done (a pass already running is joined, not doubled). */
  sweep (): Promise<void> {
    return (this.#sweeping ??= this.#sweep().finally(() => { this.#sweeping = null }))
  }

  async stop (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    // a shutdown disconnects every client: their idle clocks start before Redis closes.
    // Bounded: a Redis that stopped answering must not hold the shutdown.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all([this.#sweeping, ...this.#recording]),
      new Promise<void>(resolve => { timer = setTimeout(resolve, STOP_WAIT_MS) })
    ])
    clearTimeout(timer)
  }

  /**
   * A node killed while its clients were connected never records their disconnects: the
   * others see it stop renewing its liveness and take its sessions as disconnected then.
   * A node that was given up for dead (a long stall) claims its live sessions back.
   */
  async #heartbeat (first: boolean): Promise<void> {
    if (this.index.alive === undefined) return
    try {
      const wasAlive = await this.index.alive(this.broker.id, this.#intervalMs * 3)
      if (!wasAlive && !first) {
        for (const client of Object.values((this.broker as unknown as { clients: Record<string, Client> }).clients)) {
          const conn = (client as Numbered)[CONN]
          if (conn !== undefined) this.#record(this.index.connected(client.id, conn), 'connect', client.id)
        }
      }
      await this.index.reclaimOrphans?.(Date.now())
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'session liveness update failed; the next sweep retries')
    }
  }

  async #sweep (): Promise<void> {
    await this.#heartbeat(false)
    const cutoff = Date.now() - this.expiryS * 1000
    try {
      for (;;) {
        const claimed = await this.index.claimExpired(cutoff, SWEEP_BATCH)
        for (const clientId of claimed) {
          // back on this node since the claim: the session is in use again
          if (this.isConnected(clientId)) continue
          await this.remove(clientId)
          this.log.info({ clientId, expiryS: this.expiryS }, 'idle persistent session expired')
          this.broker.emit('sessionExpired', clientId)
        }
        if (claimed.length < SWEEP_BATCH || this.#timer === null) return
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'idle session sweep failed; the next one retries')
    }
  }

  #record (done: Promise<void>, what: string, clientId: string): void {
    const tracked = done.catch((err: unknown) => {
      this.log.warn({ clientId, err: (err as Error).message }, `recording a persistent session's ${what} failed`)
    }).finally(() => this.#recording.delete(tracked))
    this.#recording.add(tracked)
  }
}
