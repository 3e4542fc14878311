// Minimal placeholder so the broker can start while the sidecar is being built.
import Fastify, { type FastifyInstance } from 'fastify'
import type { SyncApiDeps } from './deps.js'

export async function buildApp (deps: SyncApiDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.log.child({ part: 'sync-api' }) })
  app.get('/healthz', async () => ({ status: 'ok' }))
  return app as unknown as FastifyInstance
}
