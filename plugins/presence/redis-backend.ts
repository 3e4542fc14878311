// The presence backend of a cluster (backend.ts has the rule). Keys:
//   threadline:presence:user:<u>     hash: `state` (online|away), `gone` (ms, in the grace
//                                    period), and `d:<conn>` → a|w per connected device
//   threadline:presence:pending      sorted set: user → end of their grace period (ms)
//   threadline:presence:connected    set: users with at least one device
//   threadline:presence:nodes        sorted set: node → last heartbeat (ms)
//   threadline:presence:node:<id>    set: users with a device on that node
//   threadline:presence:reaped:<id>  a node was taken for dead (so it can tell, if it wasn't)
//   threadline:presence:outbox       hash: user → the change not yet confirmed published
//   threadline:presence:outbox:at    sorted set: user → when it was written or last claimed
// Each change is one Lua script, so the state moves once and exactly one caller learns
// of each transition. Times are the nodes' clocks (epoch ms), assumed to agree within
// well under a heartbeat. Every command has the connection's commandTimeout.
//
// A command that timed out may still have run (Redis was only slow, or answered into a
// connection that was given up): its change happened, and nobody was told. So every
// change is also written to the outbox in its script; the node that publishes it takes
// it out (`published`), and what stays there longer than `staleMs` is claimed and
// published by whichever node sweeps next (`unpublished`). A change is thus published
// exactly once while Redis answers, and at least once when it did not.
import type { Redis } from 'ioredis'
import type { PresenceState } from '../../core/presence/service.js'
import type { BackendOptions, DeviceView, PresenceBackend, SyncResult, Transition } from './backend.js'

const PREFIX = 'threadline:presence:'
export const USER_PREFIX = `${PREFIX}user:`
export const PENDING_KEY = `${PREFIX}pending`
export const CONNECTED_KEY = `${PREFIX}connected`
export const NODES_KEY = `${PREFIX}nodes`
export const OUTBOX_KEY = `${PREFIX}outbox`
const OUTBOX_AT_KEY = `${PREFIX}outbox:at`
const OUTBOX_SEQ_KEY = `${PREFIX}outbox:seq`
const NODE_PREFIX = `${PREFIX}node:`
const REAPED_PREFIX = `${PREFIX}reaped:`
/** how long a reaped node's marker waits for it to come back and notice */
const REAPED_TTL_MS = 24 * 3600 * 1000

// KEYS[1] pending, KEYS[2] connected, KEYS[3] outbox, KEYS[4] outbox:at, KEYS[5] outbox seq;
// NOW: the caller's clock. recompute(): the rule of backend.ts for one user whose devices
// were just changed. Returns {} | {'state', payload} | {'pending', until}; payload is
// what the outbox holds: state|lastSeen|n.
const RULE = `
local PENDING, CONNECTED, OUTBOX, OUTBOX_AT, OUTBOX_SEQ = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local NOW
local function changed (user, state, seen)
  local payload = state .. '|' .. (seen or '') .. '|' .. redis.call('INCR', OUTBOX_SEQ)
  redis.call('HSET', OUTBOX, user, payload)
  redis.call('ZADD', OUTBOX_AT, NOW, user)
  return payload
end
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
    return {'state', changed(user, nxt)}
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
    return {'state', changed(user, 'offline', tostring(at))}
  end
  local untilMs = tostring(tonumber(at) + tonumber(grace))
  redis.call('HSET', ukey, 'gone', at)
  redis.call('ZADD', PENDING, untilMs, user)
  return {'pending', untilMs}
end
-- the grace period of user is over: offline, last seen when the last device went.
-- Returns the outbox payload, or false.
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
  return changed(user, 'offline', gone or now)
end
`

// KEYS: the RULE's five, user hash, nodes, the node's user set
// ARGV: now, user, node, at, grace, then conn, a|w pairs
const SYNC = RULE + `
NOW = ARGV[1]
local ukey, node = KEYS[6], ARGV[3]
local prefix = 'd:' .. node .. '/'
local want = {}
local mine = false
for i = 6, #ARGV, 2 do
  want['d:' .. ARGV[i]] = ARGV[i + 1]
  mine = true
end
for _, k in ipairs(redis.call('HKEYS', ukey)) do
  if string.sub(k, 1, #prefix) == prefix and not want[k] then redis.call('HDEL', ukey, k) end
end
for k, v in pairs(want) do redis.call('HSET', ukey, k, v) end
if mine then
  redis.call('SADD', KEYS[8], ARGV[2])
  if not redis.call('ZSCORE', KEYS[7], node) then redis.call('ZADD', KEYS[7], ARGV[1], node) end
else
  redis.call('SREM', KEYS[8], ARGV[2])
end
return recompute(ukey, ARGV[2], ARGV[4], ARGV[5])
`

// KEYS: the RULE's five, user hash · ARGV: user, now. Returns the outbox payload or false.
const SETTLE = RULE + `
NOW = ARGV[2]
local due = redis.call('ZSCORE', PENDING, ARGV[1])
if not due or tonumber(due) > tonumber(NOW) then return false end
return finish(KEYS[6], ARGV[1], NOW)
`

// KEYS: the RULE's five · ARGV: now, limit, user key prefix. Returns user, payload pairs.
const SETTLE_DUE = RULE + `
NOW = ARGV[1]
local out = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', PENDING, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[2]))) do
  local payload = finish(ARGV[3] .. user, user, NOW)
  if payload then
    table.insert(out, user)
    table.insert(out, payload)
  end
end
return out
`

// KEYS: nodes, the node's reaped marker · ARGV: node, now. Returns 1 when it had been reaped.
const HEARTBEAT = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return redis.call('DEL', KEYS[2])
`

// KEYS: the RULE's five, nodes, the dead node's user set, its reaped marker
// ARGV: node, cutoff, batch, user key prefix, marker ttl, now.
// Returns {more, user, payload, …}: more = 1 while users are left to reap.
const REAP = RULE + `
NOW = ARGV[6]
local node = ARGV[1]
local beat = redis.call('ZSCORE', KEYS[6], node)
if not beat or tonumber(beat) >= tonumber(ARGV[2]) then return {0} end
redis.call('SET', KEYS[8], '1', 'PX', ARGV[5])
local prefix = 'd:' .. node .. '/'
local out = {0}
for _, user in ipairs(redis.call('SPOP', KEYS[7], tonumber(ARGV[3]))) do
  local ukey = ARGV[4] .. user
  for _, k in ipairs(redis.call('HKEYS', ukey)) do
    if string.sub(k, 1, #prefix) == prefix then redis.call('HDEL', ukey, k) end
  end
  local r = recompute(ukey, user, beat, 0)
  if r[1] == 'state' then
    table.insert(out, user)
    table.insert(out, r[2])
  end
end
if redis.call('SCARD', KEYS[7]) == 0 then redis.call('ZREM', KEYS[6], node) else out[1] = 1 end
return out
`

// KEYS: outbox, outbox:at · ARGV: user, payload. The change was published: out of the outbox,
// unless a newer change of the user replaced it meanwhile.
const PUBLISHED = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[1 + 1] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 0
`

// KEYS: outbox, outbox:at · ARGV: written before, now, limit. Claims changes left unpublished
// (their time is set to now, so another node claims them only once they are stale again).
// Returns user, payload pairs.
const CLAIM_UNPUBLISHED = `
local out = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))) do
  local payload = redis.call('HGET', KEYS[1], user)
  if payload then
    redis.call('ZADD', KEYS[2], ARGV[2], user)
    table.insert(out, user)
    table.insert(out, payload)
  else
    redis.call('ZREM', KEYS[2], user)
  end
end
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
  threadlinePresencePublished(...args: string[]): Promise<number>
  threadlinePresenceClaim(...args: string[]): Promise<string[]>
}

/** A change as the outbox holds it (state|lastSeen|n) → the transition, carrying the payload to confirm it by. */
function transitionOf (userId: string, payload: string): Transition {
  const [state, seen] = payload.split('|')
  if (state === 'offline') return { userId, state, lastSeenMs: Number(seen), token: payload }
  return { userId, state: state as PresenceState, token: payload }
}

function pairs (flat: ReadonlyArray<string | number>, from = 0): Transition[] {
  const out: Transition[] = []
  for (let i = from; i + 1 < flat.length; i += 2) out.push(transitionOf(String(flat[i]), String(flat[i + 1])))
  return out
}

export class RedisBackend implements PresenceBackend {
  readonly #redis: Redis & PresenceCommands
  readonly #opts: BackendOptions
  readonly #rule: readonly string[] = [PENDING_KEY, CONNECTED_KEY, OUTBOX_KEY, OUTBOX_AT_KEY, OUTBOX_SEQ_KEY]

  constructor (redis: Redis, opts: BackendOptions) {
    redis.defineCommand('threadlinePresenceSync', { numberOfKeys: 8, lua: SYNC })
    redis.defineCommand('threadlinePresenceSettle', { numberOfKeys: 6, lua: SETTLE })
    redis.defineCommand('threadlinePresenceSettleDue', { numberOfKeys: 5, lua: SETTLE_DUE })
    redis.defineCommand('threadlinePresenceHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT })
    redis.defineCommand('threadlinePresenceReap', { numberOfKeys: 8, lua: REAP })
    redis.defineCommand('threadlinePresenceLeave', { numberOfKeys: 2, lua: LEAVE })
    redis.defineCommand('threadlinePresencePublished', { numberOfKeys: 2, lua: PUBLISHED })
    redis.defineCommand('threadlinePresenceClaim', { numberOfKeys: 2, lua: CLAIM_UNPUBLISHED })
    this.#redis = redis as Redis & PresenceCommands
    this.#opts = opts
  }

  async sync (userId: string, devices: readonly DeviceView[], atMs: number): Promise<SyncResult> {
    const node = this.#opts.nodeId
    const flat = devices.flatMap(d => [d.conn, d.away ? 'w' : 'a'])
    const r = await this.#redis.threadlinePresenceSync(...this.#rule, USER_PREFIX + userId, NODES_KEY, NODE_PREFIX + node,
      String(Date.now()), userId, node, String(atMs), String(this.#opts.graceMs), ...flat)
    if (r[0] === 'state') return { transition: transitionOf(userId, String(r[1])), pendingUntilMs: null }
    if (r[0] === 'pending') return { transition: null, pendingUntilMs: Number(r[1]) }
    return { transition: null, pendingUntilMs: null }
  }

  async settle (userId: string, nowMs: number): Promise<Transition | null> {
    const payload = await this.#redis.threadlinePresenceSettle(...this.#rule, USER_PREFIX + userId, userId, String(nowMs))
    return payload === null ? null : transitionOf(userId, payload)
  }

  async settleDue (nowMs: number, limit: number): Promise<Transition[]> {
    return pairs(await this.#redis.threadlinePresenceSettleDue(...this.#rule, String(nowMs), String(limit), USER_PREFIX))
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
        const r = await this.#redis.threadlinePresenceReap(...this.#rule, NODES_KEY, NODE_PREFIX + node, REAPED_PREFIX + node,
          node, String(cutoff), String(batch), USER_PREFIX, String(REAPED_TTL_MS), String(nowMs))
        more = r[0] === 1
        out.push(...pairs(r, 1))
      }
    }
    return out
  }

  async published (t: Transition): Promise<void> {
    if (t.token === undefined) return
    await this.#redis.threadlinePresencePublished(OUTBOX_KEY, OUTBOX_AT_KEY, t.userId, t.token)
  }

  async unpublished (nowMs: number, limit: number): Promise<Transition[]> {
    return pairs(await this.#redis.threadlinePresenceClaim(OUTBOX_KEY, OUTBOX_AT_KEY, String(nowMs - this.#opts.staleMs), String(nowMs), String(limit)))
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
