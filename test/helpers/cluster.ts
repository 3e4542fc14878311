// Two (or more) Threadline nodes in one test process forming one cluster, as DESIGN.md §7
// describes: the same DATABASE_URL and the same REDIS_URL.
import type { Threadline } from '../../broker/server.js'
import type { ThreadlinePlugin } from '../../broker/plugin.js'
import { startNode } from './node.js'
import { createDatabase } from './pg-database.js'
import { leaseRedisUrl } from './redis-db.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

interface Teardownable { teardown(fn: () => unknown): void }

/** REDIS_URL with a Redis database of its own for `t`'s lifetime (see redis-db.ts). */
export async function isolatedRedisUrl (t: Teardownable): Promise<string> {
  return await leaseRedisUrl(t)
}

/** An isolated Redis database, and a proxy in front of it that a test can cut or hang. */
export async function redisBehindProxy (t: Teardownable): Promise<{ redisUrl: string, proxy: TcpProxy }> {
  const redisUrl = await isolatedRedisUrl(t)
  const redis = new URL(redisUrl)
  const proxy = await startTcpProxy(t, { host: redis.hostname, port: Number(redis.port) })
  return { redisUrl, proxy }
}

export interface Cluster {
  readonly nodes: Threadline[]
  readonly databaseUrl: string
  readonly redisUrl: string
}

export async function startCluster (t: Teardownable, size = 2, env: Record<string, string> = {}, plugins?: ReadonlyArray<ThreadlinePlugin<unknown>>): Promise<Cluster> {
  const db = await createDatabase()
  t.teardown(db.drop)
  const redisUrl = await isolatedRedisUrl(t)
  const nodes: Threadline[] = []
  // one after the other: the first migrates, the others find the schema in place
  for (let i = 0; i < size; i++) {
    nodes.push(await startNode(t, { databaseUrl: db.url, env: { REDIS_URL: redisUrl, ...env }, plugins }))
  }
  return { nodes, databaseUrl: db.url, redisUrl }
}
