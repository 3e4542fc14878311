// Buckets shared by every node of a cluster: one key per bucket, `tl:rl:<limit>:<key>`,
// holding its TAT (see buckets.ts), and one Lua script per take (EVALSHA through ioredis'
// defineCommand) so the read and the write are one atomic step whichever node asks. The
// clock is Redis' own (TIME), so nodes whose clocks disagree still share one bucket
// rightly. A key expires (PX) when its bucket would be full again: idle buckets cost
// Redis nothing.
//
// Redis must never hold a send back for long: a take fails after the Redis timeout
// (THREADLINE_REDIS_TIMEOUT_MS, ioredis' commandTimeout), and then, and for as long as
// Redis is known not to answer (broker/redis-liveness.ts), the node's own memory buckets
// decide, synchronously. The documented tolerance: while Redis is unreachable each node
// enforces a limit on its own, so a user spread over N nodes can get up to N× the rate.
import type { Redis } from 'ioredis'
import type { Logger } from '../../broker/logger.js'
import type { RedisLiveness } from '../../broker/redis-liveness.js'
import type { BucketStore, Limit, MemoryBuckets } from './buckets.js'

export const KEY_PREFIX = 'tl:rl:'

// KEYS[1] the bucket; ARGV[1] ms between tokens, ARGV[2] burst.
// Answers 0 (a token taken) or the whole ms until one will be there (≥ 1).
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
-- from the time still owed (see buckets.ts): now + interval - now can round past interval
local owed = (tat - now) + interval
local nextTat = now + owed
local over = owed - tonumber(ARGV[2]) * interval
if over > 0 then return math.max(1, math.ceil(over)) end
redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.max(1, math.ceil(nextTat - now)))
return 0
`

interface Scripts {
  tlRlTake(key: string, intervalMs: number, burst: number): Promise<number>
}

export class RedisBuckets implements BucketStore {
  readonly #redis: Redis & Scripts
  readonly #liveness: RedisLiveness
  readonly #connection: string
  readonly #fallback: MemoryBuckets
  readonly #log: Logger
  #failing = false

  /** `connection`: the connection's name in `liveness`; `fallback`: what decides while Redis does not answer */
  constructor (redis: Redis, liveness: RedisLiveness, connection: string, fallback: MemoryBuckets, log: Logger) {
    redis.defineCommand('tlRlTake', { numberOfKeys: 1, lua: TAKE })
    this.#redis = redis as Redis & Scripts
    this.#liveness = liveness
    this.#connection = connection
    this.#fallback = fallback
    this.#log = log
  }

  get size (): number { return this.#fallback.size }

  take (limit: Limit, key: string): number | Promise<number> {
    if (!this.#liveness.isUp(this.#connection)) return this.#fallback.take(limit, key)
    return this.#redis.tlRlTake(KEY_PREFIX + limit.name + ':' + key, limit.intervalMs, limit.burst).then((wait) => {
      if (this.#failing) {
        this.#failing = false
        this.#log.info('rate limits: Redis answers again; limits are shared by the cluster again')
      }
      return Number(wait)
    }, (err: Error) => {
      this.#liveness.hung(this.#connection, err)
      if (!this.#failing) {
        this.#failing = true
        this.#log.warn({ err: err.message }, 'rate limits: Redis does not answer; each node enforces the limits on its own meanwhile')
      }
      return this.#fallback.take(limit, key)
    })
  }

  close (): void {
    this.#fallback.close()
  }
}
