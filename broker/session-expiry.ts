// Idle-session expiry of DESIGN.md §2: a persistent session (clean=false) whose client has
// been away longer than THREADLINE_SESSION_EXPIRY_S is removed (subscriptions, offline
// queue, inflight), so a device that never comes back stops costing memory. Aedes' own
// sessions never expire. The device reconnects to "session present = 0", subscribes again
// and fills its seq gap from history.
//
// Each node records when a persistent client disconnects and forgets it when it connects;
// a sweep on every node claims what is older than the expiry. With Redis the index is
// shared (a sorted set of disconnected-since times) and a claim is atomic, so two nodes
// never remove the same session twice, and a session idle on a stopped node still expires.
import type { Aedes, Client } from 'aedes'
import type { Redis } from 'ioredis'
import type { Logger } from './logger.js'

export interface IdleIndex {
  /** `conn` names the connection, so that a late disconnect of a connection taken over elsewhere is ignored */
  connected(clientId: string, conn: string): Promise<void>
  disconnected(clientId: string, conn: string, atMs: number): Promise<void>
  /** A clean=true CONNECT ended the session: nothing left to expire. */
  forget(clientId: string): Promise<void>
  /** Removes from the index, and returns, up to `limit` sessions idle since before `cutoffMs`. */
  claimExpired(cutoffMs: number, limit: number): Promise<string[]>
}

export class MemoryIdleIndex implements IdleIndex {
  // insertion order is disconnect order: a sweep stops at the first one still young
  readonly #since = new Map<string, number>()
  readonly #owner = new Map<string, string>()

  async connected (clientId: string, conn: string): Promise<void> {
    this.#owner.set(clientId, conn)
    this.#since.delete(clientId)
  }

  async disconnected (clientId: string, conn: string, atMs: number): Promise<void> {
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

// KEYS: owner hash, idle sorted set · ARGV: clientId, conn
const CONNECTED = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
`
// KEYS: owner hash, idle sorted set · ARGV: clientId, conn, disconnected-at (ms)
const DISCONNECTED = `
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
`
// KEYS: idle sorted set · ARGV: cutoff (ms), limit
const CLAIM = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
`

interface IdleCommands {
  threadlineSessionConnected(owners: string, idle: string, clientId: string, conn: string): Promise<unknown>
  threadlineSessionDisconnected(owners: string, idle: string, clientId: string, conn: string, atMs: number): Promise<unknown>
  threadlineClaimIdle(idle: string, cutoffMs: number, limit: number): Promise<string[]>
}

export const REDIS_IDLE_KEY = 'threadline:sessions:idle'
const REDIS_OWNER_KEY = 'threadline:sessions:owner'

export class RedisIdleIndex implements IdleIndex {
  readonly #redis: Redis & IdleCommands

  constructor (redis: Redis) {
    redis.defineCommand('threadlineSessionConnected', { numberOfKeys: 2, lua: CONNECTED })
    redis.defineCommand('threadlineSessionDisconnected', { numberOfKeys: 2, lua: DISCONNECTED })
    redis.defineCommand('threadlineClaimIdle', { numberOfKeys: 1, lua: CLAIM })
    this.#redis = redis as Redis & IdleCommands
  }

  async connected (clientId: string, conn: string): Promise<void> {
    await this.#redis.threadlineSessionConnected(REDIS_OWNER_KEY, REDIS_IDLE_KEY, clientId, conn)
  }

  async disconnected (clientId: string, conn: string, atMs: number): Promise<void> {
    await this.#redis.threadlineSessionDisconnected(REDIS_OWNER_KEY, REDIS_IDLE_KEY, clientId, conn, atMs)
  }

  async forget (clientId: string): Promise<void> {
    await this.#redis.multi().hdel(REDIS_OWNER_KEY, clientId).zrem(REDIS_IDLE_KEY, clientId).exec()
  }

  async claimExpired (cutoffMs: number, limit: number): Promise<string[]> {
    return await this.#redis.threadlineClaimIdle(REDIS_IDLE_KEY, cutoffMs, limit)
  }
}

const SWEEP_BATCH = 100
const SWEEP_MAX_INTERVAL_MS = 60_000

/**
 * Watches a broker's persistent clients and removes sessions idle past `expiryS`.
 * Emits `sessionExpired` (clientId) on the broker for each removed session.
 */
export class SessionExpiry {
  readonly #conns = new WeakMap<Client, string>()
  #connCount = 0
  #timer: NodeJS.Timeout | null = null
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
      const conn = `${this.broker.id}:${++this.#connCount}`
      this.#conns.set(client, conn)
      this.#record(this.index.connected(client.id, conn), 'connect', client.id)
    })
    this.broker.on('clientDisconnect', (client) => {
      const conn = this.#conns.get(client)
      if (conn === undefined) return // a clean session, or one that never finished connecting
      this.#record(this.index.disconnected(client.id, conn, Date.now()), 'disconnect', client.id)
    })
    // half the expiry, so a session goes at most 1.5 × the expiry after its disconnect
    const intervalMs = Math.min(SWEEP_MAX_INTERVAL_MS, Math.max(100, this.expiryS * 500))
    this.#timer = setInterval(() => { void this.sweep() }, intervalMs)
    this.#timer.unref()
  }

  /** One pass; resolves when it is done (a pass already running is joined, not doubled). */
  sweep (): Promise<void> {
    return (this.#sweeping ??= this.#sweep().finally(() => { this.#sweeping = null }))
  }

  async stop (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await this.#sweeping
    // a shutdown disconnects every client: their idle clocks start before Redis closes
    await Promise.all(this.#recording)
  }

  async #sweep (): Promise<void> {
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
