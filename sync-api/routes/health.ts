// Liveness and readiness for orchestrators; no token needed.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Failure, HealthStatus, ThreadlineError } from '../../schemas/index.js'
import type { RouteOptions } from './common.js'

// a probe must answer even when a dependency hangs rather than fails
const CHECK_TIMEOUT_MS = 2000

async function within (ms: number, work: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      work(),
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

export const healthRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, { deps }) => {
  const common = { tags: ['health'], security: [] }

  app.get('/healthz', {
    schema: { ...common, summary: 'Liveness: 200 while the process runs', response: { 200: HealthStatus } }
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: { ...common, summary: 'Readiness: 200 when the store and every other dependency answer', response: { 200: HealthStatus, 503: Failure } }
  }, async (request) => {
    const checks = [{ name: 'store', check: () => deps.store.ping() }, ...deps.checks]
    const results = await Promise.allSettled(checks.map(c => within(CHECK_TIMEOUT_MS, c.check)))
    const down = checks.filter((_c, i) => results[i]?.status === 'rejected').map(c => c.name)
    if (down.length > 0) {
      request.log.warn({ down, reasons: results.flatMap(r => r.status === 'rejected' ? [String(r.reason)] : []) }, 'not ready')
      throw new ThreadlineError('unavailable', `not ready: ${down.join(', ')} unreachable`)
    }
    return { status: 'ok' as const }
  })
}
