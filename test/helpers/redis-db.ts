// A Redis database of its own for each use, so test files running in parallel on the one
// test Redis never share sessions, offline queues or retained messages by chance (a random
// index collided now and then). A lease is a key in database 0, taken with SET NX and given
// back at teardown; the database is emptied when taken and when given back.
//
// Pub/sub is not scoped by database in Redis, and mqemitter-redis has no channel prefix: a
// node of another file hears packets on the topics its clients subscribe to, and Aedes'
// `$SYS/+/new/clients` (which disconnects a local client of the same clientId). Tests keep
// those apart with user ids of their own (fixtures.userId, or a per-run suffix), so no two
// files ever share a topic or a clientId.
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'

interface Teardownable { teardown(fn: () => unknown): void }

const LEASE_PREFIX = 'threadline-test:db-lease:'
// a crashed test process must not keep its database forever
const LEASE_TTL_S = 900
const WAIT_FOR_FREE_MS = 60_000

function baseUrl (): URL {
  const base = process.env.REDIS_URL
  if (base === undefined) throw new Error('REDIS_URL is not set: run the suite with npm test')
  return new URL(base)
}

function urlOf (db: number): string {
  const url = baseUrl()
  url.pathname = '/' + String(db)
  return url.toString()
}

async function flush (db: number): Promise<void> {
  const redis = new Redis(urlOf(db), { maxRetriesPerRequest: 1, lazyConnect: true })
  try {
    await redis.connect()
    await redis.flushdb()
  } finally {
    redis.disconnect()
  }
}

/** REDIS_URL pointing at a database index leased for `t`'s lifetime (databases 1 … N−1). */
export async function leaseRedisUrl (t: Teardownable): Promise<string> {
  const control = new Redis(urlOf(0), { maxRetriesPerRequest: 1, lazyConnect: true })
  await control.connect()
  try {
    const count = Number((await control.config('GET', 'databases') as string[])[1] ?? 16)
    const owner = `${process.pid}-${randomBytes(4).toString('hex')}`
    const deadline = Date.now() + WAIT_FOR_FREE_MS
    for (;;) {
      for (let db = 1; db < count; db++) {
        if (await control.set(LEASE_PREFIX + db, owner, 'EX', LEASE_TTL_S, 'NX') !== 'OK') continue
        await flush(db)
        // registered before the nodes' own teardowns, so it runs after them (teardowns run last-in, first-out)
        t.teardown(async () => {
          await flush(db)
          const release = new Redis(urlOf(0), { maxRetriesPerRequest: 1, lazyConnect: true })
          try {
            await release.connect()
            // only our own lease: an expired one may have been taken since
            await release.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, LEASE_PREFIX + db, owner)
          } finally {
            release.disconnect()
          }
        })
        return urlOf(db)
      }
      if (Date.now() >= deadline) throw new Error(`no free Redis database in ${WAIT_FOR_FREE_MS} ms: all ${count - 1} are leased`)
      await delay(100)
    }
  } finally {
    control.disconnect()
  }
}
