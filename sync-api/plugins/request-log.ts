// One log line per HTTP request, written when its answer has gone (Fastify's own logging,
// two info lines per request, is off: a busy node would write little else). Answered
// requests are `debug`, so a node at the default `info` level is quiet; refused ones
// (4xx) are `info`, failures (5xx) `warn` — the error handler has logged the cause.
// Only the route, never the query string or a header: no token ever reaches the log.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from '../../broker/logger.js'

function levelOf (status: number): 'debug' | 'info' | 'warn' {
  if (status >= 500) return 'warn'
  return status >= 400 ? 'info' : 'debug'
}

async function requestLogPlugin (app: FastifyInstance): Promise<void> {
  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const level = levelOf(reply.statusCode)
    // the sidecar's logger is the node's pino (sync-api/app.ts loggerInstance)
    if (!(request.log as Logger).isLevelEnabled(level)) return
    const identity = (request as { identity?: { userId?: string } | null }).identity
    request.log[level]({
      method: request.method,
      // the route's pattern (/v1/conversations/:id/events) when one matched, else the path
      route: request.routeOptions.url ?? (request.url.split('?')[0] ?? '').slice(0, 200),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      ip: request.ip,
      ...(identity?.userId !== undefined ? { user: identity.userId } : {})
    }, reply.statusCode >= 400 ? 'request refused' : 'request')
  })
}

export default fp(requestLogPlugin, { name: 'threadline-request-log', fastify: '5.x' })
