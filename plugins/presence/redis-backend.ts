// The presence backend of a cluster (backend.ts has the rule). Keys:
//   threadline:presence:user:<u>     hash: `state` (online|away), `gone` (ms, in the grace
//                                    period), and `d:<conn>` → a|w per connected device
//   threadline:presence:pending      sorted set: user → end of their grace period (ms)
//   threadline:presence:connected    set: users with at least one device
//   threadline:presence:nodes        sorted set: node → last heartbeat (ms)
//   threadline:presence:node:<id>    set: users with a device on that node
//   threadline:presence:reaped:<id>  a node was taken for dead (so it can tell, if it wasn't)
// Each change is one Lua script, so the state moves once and exactly one caller learns
// of each transition. Times are the nodes' clocks (epoch ms), assumed to agree within
// well under a heartbeat. Every command has the connection's commandTimeout.
import type { Redis } from 'ioredis'
import type { PresenceState } from '../../core/presence/service.js'
import type { BackendOptions, DeviceView, PresenceBackend, SyncResult, Transition } from './backend.js'

const PREFIX = 'threadline:presence:'
export const USER_PREFIX = `${PREFIX}user:`
export const PENDING_KEY = `${PREFIX}pending`
export const CONNECTED_KEY = `${PREFIX}connected`
export const NODES_KEY = `${PREFIX}nodes`
const NODE_PREFIX = `${PREFIX}node:`
const REAPED_PREFIX = `${PREFIX}reaped:`
/** how long a reaped node's marker waits for it to come back and notice */
const REAPED_TTL_MS = 24 * 3600 * 1000

// KEYS[1] pending, KEYS[2] connected. recompute(): the rule of backend.ts for one user
// whose devices were just changed. Returns {} | {'state', s[, lastSeen]} | {'pending', until}.
const RULE = `
local PENDING, CONNECTED = KEYS[1], KEYS[2]
local function recompute (ukey, user, at, grace)
  local f = redis.call('HGETALL', ukey)
  local n, active, state = 0, false, false
  for i = 1, #f, 2 do
    local k = f[i]
    if string.sub(k, 1, 2) == 'd:' then
      n = n + 1
      if f[i + 1] == 'a' then active = true end
    elseif k == 'state' then
      state = f[i + 1]
    end
  end
  if n > 0 then
    redis.call('SADD', CONNECTED, user)
    redis.call('ZREM', PENDING, user)
    redis.call('HDEL', ukey, 'gone')
    local nxt = active and 'online' or 'away'
    if state == nxt then return {} end
    redis.call('HSET', ukey, 'state', nxt)
    return {'state', nxt}
  end
  redis.call('SREM', CONNECTED, user)
  if not state then
    redis.call('DEL', ukey)
    return {}
  end
  local due = redis.call('ZSCORE', PENDING, user)
  if due then return {'pending', due} end
  if tonumber(grace) <= 0 then
    redis.call('DEL', ukey)
    return {'state', 'offline', tostring(at)}
  end
  local untilMs = tostring(tonumber(at) + tonumber(grace))
  redis.call('HSET', ukey, 'gone', at)
  redis.call('ZADD', PENDING, untilMs, user)
  return {'pending', untilMs}
end
-- the grace period of user is over: offline, last seen when the last device went
local function finish (ukey, user, now)
  redis.call('ZREM', PENDING, user)
  local f = redis.call('HGETALL', ukey)
  local gone = false
  for i = 1, #f, 2 do
    if string.sub(f[i], 1, 2) == 'd:' then return false end
    if f[i] == 'gone' then gone = f[i + 1] end
  end
  if #f == 0 then return false end
  redis.call('DEL', ukey)
  redis.call('SREM', CONNECTED, user)
  return gone or now
end
`

// KEYS: pending, connected, user hash, nodes, the node's user set
// ARGV: user, node, at, grace, then conn, a|w pairs
const SYNC = RULE + `
local ukey, node = KEYS[3], ARGV[2]
local prefix = 'd:' .. node .. '/'
local want = {}
local mine = false
for i = 5, #ARGV, 2 do
  want['d:' .. ARGV[i]] = ARGV[i + 1]
  mine = true
end
for _, k in ipairs(redis.call('HKEYS', ukey)) do
  if string.sub(k, 1, #prefix) == prefix and not want[k] then redis.call('HDEL', ukey, k) end
end
for k, v in pairs(want) do redis.call('HSET', ukey, k, v) end
if mine then
  redis.call('SADD', KEYS[5], ARGV[1])
  if not redis.call('ZSCORE', KEYS[4], node) then redis.call('ZADD', KEYS[4], ARGV[3], node) end
else
  redis.call('SREM', KEYS[5], ARGV[1])
end
return recompute(ukey, ARGV[1], ARGV[3], ARGV[4])
`

// KEYS: pending, connected, user hash · ARGV: user, now. Returns the last seen time or false.
const SETTLE = RULE + `
local due = redis.call('ZSCORE', PENDING, ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return false end
return finish(KEYS[3], ARGV[1], ARGV[2])
`

// KEYS: pending, connected · ARGV: now, limit, user key prefix. Returns user, lastSeen pairs.
const SETTLE_DUE = RULE + `
local out = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', PENDING, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))) do
  local seen = finish(ARGV[3] .. user, user, ARGV[1])
  if seen then
    table.insert(out, user)
    table.insert(out, seen)
  end
end
return out
`

// KEYS: nodes, the node's reaped marker · ARGV: node, now. Returns 1 when it had been reaped.
const HEARTBEAT = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return redis.call('DEL', KEYS[2])
`

// KEYS: pending, connected, nodes, the dead node's user set, its reaped marker
// ARGV: node, cutoff, batch, user key prefix, marker ttl.
// Returns {more, user, state, lastSeen, …}: more = 1 while users are left to reap.
const REAP = RULE + `
local node = ARGV[1]
local beat = redis.call('ZSCORE', KEYS[3], node)
if not beat or tonumber(beat) >= tonumber(ARGV[2]) then return {0} end
redis.call('SET', KEYS[5], '1', 'PX', ARGV[5])
local prefix = 'd:' .. node .. '/'
local out = {0}
for _, user in ipairs(redis.call('SPOP', KEYS[4], tonumber(ARGV[3]))) do
  local ukey = ARGV[4] .. user
  for _, k in ipairs(redis.call('HKEYS', ukey)) do
    if string.sub(k, 1, #prefix) == prefix then redis.call('HDEL', ukey, k) end
  end
  local r = recompute(ukey, user, beat, 0)
  if r[1] == 'state' then
    table.insert(out, user)
    table.insert(out, r[2])
    table.insert(out, r[3] or '')
  end
end
if redis.call('SCARD', KEYS[4]) == 0 then redis.call('ZREM', KEYS[3], node) else out[1] = 1 end
return out
`

// KEYS: nodes, the node's user set · ARGV: node
const LEAVE = `
if redis.call('SCARD', KEYS[2]) == 0 then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`

type Reply = Array<string | number>

interface PresenceCommands {
  threadlinePresenceSync(...args: string[]): Promise<Reply>
  threadlinePresenceSettle(...args: string[]): Promise<string | null>
  threadlinePresenceSettleDue(...args: string[]): Promise<string[]>
  threadlinePresenceHeartbeat(...args: string[]): Promise<number>
  threadlinePresenceReap(...args: string[]): Promise<Reply>
  threadlinePresenceLeave(...args: string[]): Promise<number>
}

function transitionOf (userId: string, state: string, lastSeen: string | number | undefined): Transition {
  if (state === 'offline') return { userId, state, lastSeenMs: Number(lastSeen) }
  return { userId, state: state as PresenceState }
}

export class RedisBackend implements PresenceBackend {
  readonly #redis: Redis & PresenceCommands
  readonly #opts: BackendOptions

  constructor (redis: Redis, opts: BackendOptions) {
    redis.defineCommand('threadlinePresenceSync', { numberOfKeys: 5, lua: SYNC })
    redis.defineCommand('threadlinePresenceSettle', { numberOfKeys: 3, lua: SETTLE })
    redis.defineCommand('threadlinePresenceSettleDue', { numberOfKeys: 2, lua: SETTLE_DUE })
    redis.defineCommand('threadlinePresenceHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT })
    redis.defineCommand('threadlinePresenceReap', { numberOfKeys: 5, lua: REAP })
    redis.defineCommand('threadlinePresenceLeave', { numberOfKeys: 2, lua: LEAVE })
    this.#redis = redis as Redis & PresenceCommands
    this.#opts = opts
  }

  async sync (userId: string, devices: readonly DeviceView[], atMs: number): Promise<SyncResult> {
    const node = this.#opts.nodeId
    const pairs = devices.flatMap(d => [d.conn, d.away ? 'w' : 'a'])
    const r = await this.#redis.threadlinePresenceSync(PENDING_KEY, CONNECTED_KEY, USER_PREFIX + userId, NODES_KEY, NODE_PREFIX + node,
      userId, node, String(atMs), String(this.#opts.graceMs), ...pairs)
    if (r[0] === 'state') return { transition: transitionOf(userId, String(r[1]), r[2]), pendingUntilMs: null }
    if (r[0] === 'pending') return { transition: null, pendingUntilMs: Number(r[1]) }
    return { transition: null, pendingUntilMs: null }
  }

  async settle (userId: string, nowMs: number): Promise<Transition | null> {
    const seen = await this.#redis.threadlinePresenceSettle(PENDING_KEY, CONNECTED_KEY, USER_PREFIX + userId, userId, String(nowMs))
    return seen === null ? null : transitionOf(userId, 'offline', seen)
  }

  async settleDue (nowMs: number, limit: number): Promise<Transition[]> {
    const flat = await this.#redis.threadlinePresenceSettleDue(PENDING_KEY, CONNECTED_KEY, String(nowMs), String(limit), USER_PREFIX)
    const out: Transition[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) out.push(transitionOf(flat[i] as string, 'offline', flat[i + 1]))
    return out
  }

  async heartbeat (nowMs: number): Promise<boolean> {
    const node = this.#opts.nodeId
    return await this.#redis.threadlinePresenceHeartbeat(NODES_KEY, REAPED_PREFIX + node, node, String(nowMs)) === 1
  }

  async reapDead (nowMs: number, limit: number): Promise<Transition[]> {
    const cutoff = nowMs - this.#opts.deadAfterMs
    const dead = (await this.#redis.zrangebyscore(NODES_KEY, '-inf', `(${cutoff}`)).filter(n => n !== this.#opts.nodeId)
    const out: Transition[] = []
    let budget = limit
    for (const node of dead) {
      for (let more = true; more && budget > 0;) {
        const batch = Math.min(budget, 100)
        budget -= batch
        const r = await this.#redis.threadlinePresenceReap(PENDING_KEY, CONNECTED_KEY, NODES_KEY, NODE_PREFIX + node, REAPED_PREFIX + node,
          node, String(cutoff), String(batch), USER_PREFIX, String(REAPED_TTL_MS))
        more = r[0] === 1
        for (let i = 1; i + 2 < r.length; i += 3) {
          out.push(transitionOf(String(r[i]), String(r[i + 1]), r[i + 2]))
        }
      }
    }
    return out
  }

  async states (userIds: readonly string[]): Promise<Map<string, Exclude<PresenceState, 'offline'>>> {
    const out = new Map<string, Exclude<PresenceState, 'offline'>>()
    if (userIds.length === 0) return out
    const pipeline = this.#redis.pipeline()
    for (const id of userIds) pipeline.hget(USER_PREFIX + id, 'state')
    const results = await pipeline.exec() ?? []
    results.forEach(([err, value], i) => {
      if (err) throw err
      if (value === 'online' || value === 'away') out.set(userIds[i] as string, value)
    })
    return out
  }

  async connected (userIds: readonly string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set()
    const flags = await this.#redis.smismember(CONNECTED_KEY, ...userIds)
    return new Set(userIds.filter((_id, i) => flags[i] === 1))
  }

  async leave (): Promise<void> {
    const node = this.#opts.nodeId
    await this.#redis.threadlinePresenceLeave(NODES_KEY, NODE_PREFIX + node, node)
  }

  async close (): Promise<void> {}
}
