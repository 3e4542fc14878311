// Two (or more) Threadline nodes in one test process forming one cluster, as DESIGN.md §7
// describes: the same DATABASE_URL and the same REDIS_URL.
import { randomInt } from 'node:crypto'
import type { Threadline } from '../../broker/server.js'
import { startNode } from './node.js'
import { createDatabase } from './pg-database.js'

interface Teardownable { teardown(fn: () => unknown): void }

/**
 * REDIS_URL with a Redis database index of its own, so that test files running in
 * parallel on the one test Redis keep their sessions, offline queues and retained
 * messages apart. Pub/sub is not scoped by database in Redis, so packets still cross:
 * tests keep apart by using random user and conversation ids (fixtures.userId).
 */
export function isolatedRedisUrl (): string {
  const base = process.env.REDIS_URL
  if (base === undefined) throw new Error('REDIS_URL is not set: run the suite with npm test')
  const url = new URL(base)
  // db 0 is what single-node tests with redis: true share; Redis has 16 by default
  url.pathname = '/' + String(randomInt(1, 16))
  return url.toString()
}

export interface Cluster {
  readonly nodes: Threadline[]
  readonly databaseUrl: string
  readonly redisUrl: string
}

export async function startCluster (t: Teardownable, size = 2, env: Record<string, string> = {}): Promise<Cluster> {
  const db = await createDatabase()
  t.teardown(db.drop)
  const redisUrl = isolatedRedisUrl()
  const nodes: Threadline[] = []
  // one after the other: the first migrates, the others find the schema in place
  for (let i = 0; i < size; i++) {
    nodes.push(await startNode(t, { databaseUrl: db.url, env: { REDIS_URL: redisUrl, ...env } }))
  }
  return { nodes, databaseUrl: db.url, redisUrl }
}
