// The idle-session index of broker/session-expiry.ts shared by a cluster in Redis:
//   threadline:sessions:idle        sorted set, clientId scored by its disconnect time (ms)
//   threadline:sessions:owner       hash, clientId → the connection that has it now
//   threadline:sessions:node:<id>   a node's liveness, renewed every sweep (expires)
// Every change is one script call, so a late disconnect of a connection taken over on
// another node, or two nodes' sweeps, never interleave half-way.
import type { Redis } from 'ioredis'
import type { IdleIndex } from './session-expiry.js'

export const REDIS_IDLE_KEY = 'threadline:sessions:idle'
const REDIS_OWNER_KEY = 'threadline:sessions:owner'
const REDIS_NODE_PREFIX = 'threadline:sessions:node:'
const RECLAIM_BATCH = 500

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

// KEYS: the node's liveness key · ARGV: ttl (ms). Returns whether it was still there.
const ALIVE = `
local was = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return was
`
// KEYS: owner hash, idle sorted set · ARGV: now (ms), node key prefix, then clientId/conn
// pairs. A conn is '<nodeId>:<n>'; a session whose node's liveness key is gone goes idle.
const RECLAIM = `
local n = 0
for i = 3, #ARGV, 2 do
  local id, conn = ARGV[i], ARGV[i + 1]
  local node = string.match(conn, '^(.*):[^:]*$')
  if node and redis.call('EXISTS', ARGV[2] .. node) == 0 and redis.call('HGET', KEYS[1], id) == conn then
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZADD', KEYS[2], 'NX', ARGV[1], id)
    n = n + 1
  end
end
return n
`

interface IdleCommands {
  threadlineNodeAlive(nodeKey: string, ttlMs: number): Promise<number>
  threadlineReclaimOrphans(owners: string, idle: string, atMs: number, prefix: string, ...pairs: string[]): Promise<number>
  threadlineSessionConnected(owners: string, idle: string, clientId: string, conn: string): Promise<unknown>
  threadlineSessionDisconnected(owners: string, idle: string, clientId: string, conn: string, atMs: number): Promise<unknown>
  threadlineClaimIdle(idle: string, cutoffMs: number, limit: number): Promise<string[]>
}

export class RedisIdleIndex implements IdleIndex {
  readonly #redis: Redis & IdleCommands
  readonly #nodeId: string

  /** `nodeId`: this node (the broker id); a connection is named `<nodeId>:<n>` in Redis */
  constructor (redis: Redis, nodeId: string) {
    this.#nodeId = nodeId
    redis.defineCommand('threadlineSessionConnected', { numberOfKeys: 2, lua: CONNECTED })
    redis.defineCommand('threadlineSessionDisconnected', { numberOfKeys: 2, lua: DISCONNECTED })
    redis.defineCommand('threadlineClaimIdle', { numberOfKeys: 1, lua: CLAIM })
    redis.defineCommand('threadlineNodeAlive', { numberOfKeys: 1, lua: ALIVE })
    redis.defineCommand('threadlineReclaimOrphans', { numberOfKeys: 2, lua: RECLAIM })
    this.#redis = redis as Redis & IdleCommands
  }

  async connected (clientId: string, conn: number): Promise<void> {
    await this.#redis.threadlineSessionConnected(REDIS_OWNER_KEY, REDIS_IDLE_KEY, clientId, `${this.#nodeId}:${conn}`)
  }

  async disconnected (clientId: string, conn: number, atMs: number): Promise<void> {
    await this.#redis.threadlineSessionDisconnected(REDIS_OWNER_KEY, REDIS_IDLE_KEY, clientId, `${this.#nodeId}:${conn}`, atMs)
  }

  async forget (clientId: string): Promise<void> {
    await this.#redis.multi().hdel(REDIS_OWNER_KEY, clientId).zrem(REDIS_IDLE_KEY, clientId).exec()
  }

  async idle (): Promise<number> {
    return await this.#redis.zcard(REDIS_IDLE_KEY)
  }

  async claimExpired (cutoffMs: number, limit: number): Promise<string[]> {
    return await this.#redis.threadlineClaimIdle(REDIS_IDLE_KEY, cutoffMs, limit)
  }

  async alive (nodeId: string, ttlMs: number): Promise<boolean> {
    return await this.#redis.threadlineNodeAlive(REDIS_NODE_PREFIX + nodeId, Math.ceil(ttlMs)) === 1
  }

  /** One HSCAN pass over the owners, in batches (O(connected persistent sessions)). */
  async reclaimOrphans (atMs: number): Promise<number> {
    let reclaimed = 0
    let cursor = '0'
    do {
      const [next, flat] = await this.#redis.hscan(REDIS_OWNER_KEY, cursor, 'COUNT', RECLAIM_BATCH)
      if (flat.length > 0) reclaimed += await this.#redis.threadlineReclaimOrphans(REDIS_OWNER_KEY, REDIS_IDLE_KEY, atMs, REDIS_NODE_PREFIX, ...flat)
      cursor = next
    } while (cursor !== '0')
    return reclaimed
  }
}
