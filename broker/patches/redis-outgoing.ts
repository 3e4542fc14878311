// aedes-persistence-redis 11.2 has no way to cap or drop one client's offline queue: its
// `maxSessionDelivery` only bounds what one reconnect replays, and removing a session's
// last subscription DELs the queue list without releasing the packets it points at. So we
// work on its key layout directly (asyncPersistence.js):
//   outgoing:<encodeURIComponent(clientId)>   list of packet keys, oldest first (RPUSH)
//   packet:<brokerId>:<brokerCounter>         the msgpack'd packet, shared by its queues
//   packet:<brokerId>:<brokerCounter>:offlineCount   how many queues still hold it
//   outgoing:<clientId>:<brokerId>:<counter>  a QoS 2 packet after PUBREC (list entry)
// Dropping an entry releases it the way outgoingClearMessageId does: DECR the count and
// DEL the packet at zero. test/broker/patches/redis-outgoing.test.ts fails if the layout changes.
import type { Redis } from 'ioredis'

export function outgoingKey (clientId: string): string {
  return `outgoing:${encodeURIComponent(clientId)}`
}

// Releases one popped list entry (shared by both scripts).
const RELEASE = `
local function release (key)
  if string.sub(key, 1, 7) == 'packet:' then
    local left = redis.call('DECR', key .. ':offlineCount')
    if left <= 0 then redis.call('DEL', key, key .. ':offlineCount') end
  else
    redis.call('DEL', key)
  end
end
`

// KEYS: queue list, idle sorted set · ARGV: cap, clientId, force ('1': trim even when the
// client is not marked idle). A connected client's oldest entries are in flight: Aedes
// still updates and acknowledges them, so only an idle session's queue is trimmed then.
const TRIM = RELEASE + `
if ARGV[3] ~= '1' and not redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 0 end
local excess = redis.call('LLEN', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
for i = 1, excess do release(redis.call('LPOP', KEYS[1])) end
return excess
`

// KEYS: queue list. Empties it, releasing every packet.
const DRAIN = RELEASE + `
local n = 0
local key = redis.call('LPOP', KEYS[1])
while key do
  release(key)
  n = n + 1
  key = redis.call('LPOP', KEYS[1])
end
return n
`

interface QueueCommands {
  threadlineTrimQueue(list: string, idle: string, cap: number, clientId: string, force: '0' | '1'): Promise<number>
  threadlineDrainQueue(list: string): Promise<number>
}

/** Redis-side operations on aedes-persistence-redis' queues (one script call each, atomic). */
export class RedisQueues {
  readonly #redis: Redis & QueueCommands

  constructor (redis: Redis, private readonly idleKey: string) {
    redis.defineCommand('threadlineTrimQueue', { numberOfKeys: 2, lua: TRIM })
    redis.defineCommand('threadlineDrainQueue', { numberOfKeys: 1, lua: DRAIN })
    this.#redis = redis as Redis & QueueCommands
  }

  /** Drops the oldest entries past `cap`; unless `force`, only while the session is idle. */
  trim (clientId: string, cap: number, force: boolean): Promise<number> {
    return this.#redis.threadlineTrimQueue(outgoingKey(clientId), this.idleKey, cap, clientId, force ? '1' : '0')
  }

  drain (clientId: string): Promise<number> {
    return this.#redis.threadlineDrainQueue(outgoingKey(clientId))
  }

  length (clientId: string): Promise<number> {
    return this.#redis.llen(outgoingKey(clientId))
  }
}
