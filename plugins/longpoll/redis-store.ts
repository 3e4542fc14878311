// Event queues in Redis, shared by every node of a cluster: a poll may land on any node
// and a node may die with a poll held, and the queue is where the client left it.
//
// Why Redis decides which queues get an event: the node that publishes a packet appends
// it (Aedes emits 'publish' only there, so each packet is appended once), and one script
// looks up the topic's queues and appends, atomically. A queue created on another node a
// moment earlier is seen at once; a per-node cache of "who follows what" could miss it
// for as long as its announcement takes, and an event missed is an event skipped.
//
// Keys (P = tl:lp:): P q:<id> hash (user, device, state, last id given, bytes held,
// topics) · P e:<id> stream of events, ids 0-1, 0-2, … · P s:<topic> set of queue ids
// following the topic · P u:<user> hash device → queue id · P polled zset queue id → last
// poll (ms). Every script derives its keys from P, so this needs one Redis (or a cluster
// slot of its own), not Redis Cluster. An append that fails (Redis down or hung) is not
// retried: the queues of its topic are expired once Redis answers again, so their clients
// resync instead of missing an event unknowingly.
import type { Redis } from 'ioredis'
import type { Logger } from '../../broker/logger.js'
import type { PollResult, QueuedEvent, QueueLimits, QueueSpec, QueueStore } from './queue-store.js'
import { queuePayloadOf } from './queue-store.js'

const PREFIX = 'tl:lp:'
/** appends waiting for Redis at most; past it an append counts as failed */
export const MAX_APPENDS_IN_FLIGHT = 10_000
/** topics remembered as missed; past it every queue is expired */
export const MAX_MISSED_TOPICS = 10_000
/** queues one sweep expires at most (it runs again soon) */
const SWEEP_BATCH = 500

// ARGV[1] prefix, ARGV[2] wake channel, ARGV[3] tombstone ms; then the script's own
const PRELUDE = `
local P, W, TOMB = ARGV[1], ARGV[2], tonumber(ARGV[3])
local function expire(id)
  local q = P .. 'q:' .. id
  local f = redis.call('HMGET', q, 'state', 'topics', 'user', 'device')
  if f[1] ~= 'live' then
    -- already ended, or its hash went outside these scripts (evicted): it must leave the
    -- sweep's index, or the sweep would find it again forever
    redis.call('ZREM', P .. 'polled', id)
    return
  end
  if f[2] then
    for t in string.gmatch(f[2], '%S+') do redis.call('SREM', P .. 's:' .. t, id) end
  end
  redis.call('DEL', P .. 'e:' .. id)
  redis.call('ZREM', P .. 'polled', id)
  local u = P .. 'u:' .. f[3]
  if redis.call('HGET', u, f[4]) == id then redis.call('HDEL', u, f[4]) end
  redis.call('HSET', q, 'state', 'expired')
  redis.call('HDEL', q, 'topics', 'last', 'bytes')
  redis.call('PEXPIRE', q, TOMB)
  redis.call('PUBLISH', W, id)
end
local function idle(id, now, ttl)
  return now - tonumber(redis.call('ZSCORE', P .. 'polled', id) or '0') > ttl
end
`

// ARGV[4] id, [5] user, [6] device, [7] now, [8] per user, [9…] topics
const CREATE = PRELUDE + `
local id, user, device, now, perUser = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local u = P .. 'u:' .. user
local old = redis.call('HGET', u, device)
if old then expire(old) end
redis.call('HDEL', u, device)
local guard = 0
while redis.call('HLEN', u) >= perUser and guard < 1000 do
  guard = guard + 1
  local all = redis.call('HGETALL', u)
  local od, oq, at = nil, nil, nil
  for i = 1, #all, 2 do
    local s = tonumber(redis.call('ZSCORE', P .. 'polled', all[i + 1]) or '0')
    if od == nil or s < at then od, oq, at = all[i], all[i + 1], s end
  end
  expire(oq)
  redis.call('HDEL', u, od)
end
local q = P .. 'q:' .. id
redis.call('DEL', q, P .. 'e:' .. id)
local topics = {}
for i = 9, #ARGV do
  topics[#topics + 1] = ARGV[i]
  redis.call('SADD', P .. 's:' .. ARGV[i], id)
end
redis.call('HSET', q, 'user', user, 'device', device, 'state', 'live', 'last', 0, 'bytes', 0, 'topics', table.concat(topics, ' '))
redis.call('ZADD', P .. 'polled', now, id)
redis.call('HSET', u, device, id)
return 1
`

// ARGV[4] topic, [5] payload, [6] now, [7] ttl ms, [8] max events, [9] max bytes
const APPEND = PRELUDE + `
local s = P .. 's:' .. ARGV[4]
local payload, now, ttl, maxEvents, maxBytes = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', s)) do
  local q = P .. 'q:' .. id
  if redis.call('HGET', q, 'state') ~= 'live' then
    redis.call('SREM', s, id)
  elseif idle(id, now, ttl) then
    expire(id)
  else
    local e = P .. 'e:' .. id
    local last = redis.call('HINCRBY', q, 'last', 1)
    redis.call('XADD', e, '0-' .. last, 'p', payload)
    local bytes = redis.call('HINCRBY', q, 'bytes', #payload)
    if redis.call('XLEN', e) > maxEvents or bytes > maxBytes then
      expire(id)
    else
      redis.call('PUBLISH', W, id)
      n = n + 1
    end
  end
end
return n
`

// ARGV[4] id, [5] user, [6] last event id, [7] limit, [8] now, [9] ttl ms
const POLL = PRELUDE + `
local id, user, lastId, limit, now, ttl = ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local q = P .. 'q:' .. id
local f = redis.call('HMGET', q, 'user', 'state', 'last')
if f[1] ~= user then return {'not_found'} end
if f[2] ~= 'live' then return {'expired'} end
if idle(id, now, ttl) then
  expire(id)
  return {'expired'}
end
local last = tonumber(f[3])
if lastId > last then return {'ahead', tostring(last)} end
local e = P .. 'e:' .. id
if lastId > 0 then
  local acked = redis.call('XRANGE', e, '-', '0-' .. ARGV[6])
  local bytes = 0
  for i = 1, #acked, 500 do
    local ids = {}
    for k = i, math.min(i + 499, #acked) do
      ids[#ids + 1] = acked[k][1]
      bytes = bytes + #acked[k][2][2]
    end
    redis.call('XDEL', e, unpack(ids))
  end
  if bytes > 0 then redis.call('HINCRBY', q, 'bytes', -bytes) end
end
redis.call('ZADD', P .. 'polled', now, id)
local out = {'events', tostring(last)}
for _, entry in ipairs(redis.call('XRANGE', e, '0-' .. tostring(lastId + 1), '+', 'COUNT', limit)) do
  out[#out + 1] = entry[1]
  out[#out + 1] = entry[2][2]
end
return out
`

// ARGV[4] id, [5] user, [6] now, [7] ttl ms, [8…] topics
const FOLLOW = PRELUDE + `
local id, user, now, ttl = ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local q = P .. 'q:' .. id
local f = redis.call('HMGET', q, 'user', 'state', 'topics')
if f[1] ~= user then return 'not_found' end
if f[2] ~= 'live' then return 'expired' end
if idle(id, now, ttl) then
  expire(id)
  return 'expired'
end
for t in string.gmatch(f[3] or '', '%S+') do redis.call('SREM', P .. 's:' .. t, id) end
local topics = {}
for i = 8, #ARGV do
  topics[#topics + 1] = ARGV[i]
  redis.call('SADD', P .. 's:' .. ARGV[i], id)
end
redis.call('HSET', q, 'topics', table.concat(topics, ' '))
return 'ok'
`

// ARGV[4] id, [5] now
const TOUCH = PRELUDE + `
redis.call('ZADD', P .. 'polled', 'XX', tonumber(ARGV[5]), ARGV[4])
return 1
`

// ARGV[4] id, [5] user
const DELETE = PRELUDE + `
local f = redis.call('HMGET', P .. 'q:' .. ARGV[4], 'user', 'state')
if f[1] ~= ARGV[5] or f[2] ~= 'live' then return 0 end
expire(ARGV[4])
return 1
`

// ARGV[4] now, [5] ttl ms, [6] limit
const SWEEP = PRELUDE + `
local ids = redis.call('ZRANGEBYSCORE', P .. 'polled', '-inf', '(' .. tostring(tonumber(ARGV[4]) - tonumber(ARGV[5])), 'LIMIT', 0, tonumber(ARGV[6]))
for _, id in ipairs(ids) do expire(id) end
return #ids
`

// ARGV[4…] topics whose appends failed; no topic: every queue
const EXPIRE_FOLLOWERS = PRELUDE + `
local n = 0
if #ARGV < 4 then
  for _, id in ipairs(redis.call('ZRANGE', P .. 'polled', 0, -1)) do expire(id); n = n + 1 end
  return n
end
for i = 4, #ARGV do
  for _, id in ipairs(redis.call('SMEMBERS', P .. 's:' .. ARGV[i])) do expire(id); n = n + 1 end
end
return n
`

const STATS = `
local P = ARGV[1]
local ids = redis.call('ZRANGE', P .. 'polled', 0, -1)
local events = 0
for _, id in ipairs(ids) do events = events + redis.call('XLEN', P .. 'e:' .. id) end
return {#ids, events}
`

type Args = Array<string | number | Buffer>
interface Scripts {
  tlLpCreate(...args: Args): Promise<number>
  tlLpAppend(...args: Args): Promise<number>
  tlLpPollBuffer(...args: Args): Promise<Buffer[]>
  tlLpFollow(...args: Args): Promise<'ok' | 'not_found' | 'expired'>
  tlLpTouch(...args: Args): Promise<number>
  tlLpDelete(...args: Args): Promise<number>
  tlLpSweep(...args: Args): Promise<number>
  tlLpExpireFollowers(...args: Args): Promise<number>
  tlLpStats(...args: Args): Promise<[number, number]>
}

export class RedisQueueStore implements QueueStore {
  readonly #redis: Redis & Scripts
  readonly #subscriber: Redis
  readonly #limits: QueueLimits
  readonly #log: Logger
  readonly #channel: string
  readonly #listeners: Array<(queueId: string) => void> = []
  #inFlight = 0
  readonly #missed = new Set<string>()
  #missedAll = false
  /** the expiry of missed queues under way, which every caller shares */
  #flushing: Promise<void> | null = null

  /** `subscriber`: a connection of its own, which this store puts in subscriber mode */
  constructor (redis: Redis, subscriber: Redis, limits: QueueLimits, log: Logger) {
    this.#redis = redis as Redis & Scripts
    this.#subscriber = subscriber
    this.#limits = limits
    this.#log = log
    // pub/sub ignores the database number: nodes on another database of the same Redis
    // (tests, say) must not wake each other's polls
    this.#channel = `${PREFIX}wake:${redis.options.db ?? 0}`
    const scripts: Array<[string, string]> = [
      ['tlLpCreate', CREATE], ['tlLpAppend', APPEND], ['tlLpPoll', POLL], ['tlLpFollow', FOLLOW], ['tlLpTouch', TOUCH],
      ['tlLpDelete', DELETE], ['tlLpSweep', SWEEP], ['tlLpExpireFollowers', EXPIRE_FOLLOWERS], ['tlLpStats', STATS]
    ]
    for (const [name, lua] of scripts) redis.defineCommand(name, { numberOfKeys: 0, lua })
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return
      for (const listener of this.#listeners) listener(message)
    })
    subscriber.subscribe(this.#channel).catch((err: unknown) => log.warn({ err }, 'long-poll: wake channel not subscribed yet (ioredis subscribes again on reconnect)'))
  }

  #base (): Args {
    return [PREFIX, this.#channel, this.#limits.tombstoneMs]
  }

  async create (queueId: string, spec: QueueSpec, now: number): Promise<void> {
    await this.#redis.tlLpCreate(...this.#base(), queueId, spec.userId, spec.deviceId, now, this.#limits.perUser, ...spec.topics)
  }

  append (topic: string, payload: Buffer, now: number): void {
    const event = queuePayloadOf(topic, payload)
    if (event === null) return
    if (this.#inFlight >= MAX_APPENDS_IN_FLIGHT) {
      this.#missedTopic(topic)
      return
    }
    // Sent ahead of the append on the same connection, so Redis runs it first: a queue
    // that missed an event expires before a later event can reach it. Expired after the
    // append instead, a poll between the two (on any node) would give the later event
    // and skip the missed one without a word.
    if (this.#missedAll || this.#missed.size > 0) this.#flushMissed().catch(() => {})
    this.#inFlight++
    this.#redis.tlLpAppend(...this.#base(), topic, event, now, this.#limits.ttlMs, this.#limits.maxEvents, this.#limits.maxBytes)
      .then(() => { if (this.#missedAll || this.#missed.size > 0) this.#flushMissed().catch(() => {}) }, (err: unknown) => {
        this.#log.warn({ err: (err as Error).message, topic }, 'long-poll: append failed; the queues following the topic will expire')
        this.#missedTopic(topic)
      })
      .finally(() => { this.#inFlight-- })
  }

  async poll (queueId: string, userId: string, lastEventId: number, limit: number, now: number): Promise<PollResult> {
    // an append of this node's failed: the queue may have missed an event, and must not
    // answer as if it had not (Redis down still: the poll fails, and the client retries)
    while (this.#missedAll || this.#missed.size > 0) await this.#flushMissed()
    const reply = await this.#redis.tlLpPollBuffer(...this.#base(), queueId, userId, lastEventId, limit, now, this.#limits.ttlMs)
    const kind = String(reply[0])
    if (kind === 'not_found' || kind === 'expired') return { kind }
    const lastGiven = Number(String(reply[1]))
    if (kind === 'ahead') return { kind, lastEventId: lastGiven }
    const events: QueuedEvent[] = []
    for (let i = 2; i + 1 < reply.length; i += 2) {
      const id = String(reply[i])
      events.push({ id: Number(id.slice(id.indexOf('-') + 1)), payload: reply[i + 1] as Buffer })
    }
    return { kind: 'events', events, lastEventId: lastGiven }
  }

  async follow (queueId: string, userId: string, topics: readonly string[], now: number): Promise<'ok' | 'not_found' | 'expired'> {
    return await this.#redis.tlLpFollow(...this.#base(), queueId, userId, now, this.#limits.ttlMs, ...topics)
  }

  async touch (queueId: string, now: number): Promise<void> {
    await this.#redis.tlLpTouch(...this.#base(), queueId, now)
  }

  async delete (queueId: string, userId: string): Promise<boolean> {
    return await this.#redis.tlLpDelete(...this.#base(), queueId, userId) === 1
  }

  async sweep (now: number): Promise<void> {
    if (this.#missedAll || this.#missed.size > 0) this.#flushMissed().catch(() => {})
    while (await this.#redis.tlLpSweep(...this.#base(), now, this.#limits.ttlMs, SWEEP_BATCH) === SWEEP_BATCH);
  }

  onWake (listener: (queueId: string) => void): void {
    this.#listeners.push(listener)
  }

  async stats (): Promise<{ queues: number, events: number }> {
    const [queues, events] = await this.#redis.tlLpStats(PREFIX)
    return { queues, events }
  }

  async close (): Promise<void> {
    this.#listeners.length = 0
  }

  #missedTopic (topic: string): void {
    if (this.#missed.size >= MAX_MISSED_TOPICS) this.#missedAll = true
    else this.#missed.add(topic)
  }

  /**
   * Expires the queues whose appends failed, once Redis answers again: tried before the
   * next append, after one that succeeds, by a poll on this node and by each sweep.
   */
  #flushMissed (): Promise<void> {
    if (this.#flushing !== null) return this.#flushing
    const all = this.#missedAll
    const topics = all ? [] : [...this.#missed]
    this.#flushing = this.#redis.tlLpExpireFollowers(...this.#base(), ...topics)
      .then((n) => {
        // Every queue expired, so every topic remembered is done with: kept, they would
        // expire the queues opened since at the next flush. (What failed after this was
        // sent failed after it ran: one connection answers in order.)
        if (all) {
          this.#missedAll = false
          this.#missed.clear()
        }
        for (const t of topics) this.#missed.delete(t)
        this.#log.warn({ queues: n }, 'long-poll: queues that missed events expired; their clients resync')
      }, (err: unknown) => {
        this.#log.warn({ err: (err as Error).message }, 'long-poll: missed queues not expired yet')
        throw err
      })
      .finally(() => { this.#flushing = null })
    return this.#flushing
  }
}
