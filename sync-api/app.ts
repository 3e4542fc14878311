// The REST sidecar (DESIGN.md §6), built but not listening: broker/server.ts serves it
// next to the MQTT WebSocket, tests drive it with app.inject().
import Fastify, { LogController, type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { ProxyTrust } from '../broker/client-address.js'
import type { SyncApiDeps } from './deps.js'
import auth from './plugins/auth.js'
import cors from './plugins/cors.js'
import docs from './plugins/docs.js'
import errors from './plugins/errors.js'
import jsonBody from './plugins/json-body.js'
import requestLog from './plugins/request-log.js'
import { conversationsRoutes } from './routes/conversations.js'
import { eventsRoutes } from './routes/events.js'
import { healthRoutes } from './routes/health.js'
import { meRoutes } from './routes/me.js'
import { membersRoutes } from './routes/members.js'
import { messagesRoutes } from './routes/messages.js'
import { syncRoutes } from './routes/sync.js'
import { webRoutes } from './routes/web.js'
import { schemaErrorFormatter, validatorCompiler } from './validation.js'
import { WebBundle } from './web/bundle.js'

const API_VERSION = '1.0.0'

export async function buildApp (deps: SyncApiDeps): Promise<FastifyInstance> {
  const trust = new ProxyTrust(deps.config.trustProxy)
  const app = Fastify({
    loggerInstance: deps.log.child({ part: 'sync-api' }),
    bodyLimit: deps.config.maxPayloadBytes,
    // sync-api/plugins/request-log.ts writes one line per request instead of Fastify's two
    logController: new LogController({ disableRequestLogging: true }),
    // request.ip: X-Forwarded-For from THREADLINE_TRUST_PROXY peers only, as the MQTT
    // WebSocket reads it (broker/client-address.ts)
    trustProxy: trust.any ? (address: string) => trust.trusts(address) : false,
    schemaErrorFormatter
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)

  await app.register(requestLog)
  await app.register(errors, { bodyLimit: deps.config.maxPayloadBytes })
  await app.register(jsonBody)
  await app.register(cors, { origins: deps.config.corsOrigins })
  await app.register(docs, { version: API_VERSION })
  for (const http of deps.http ?? []) await app.register(fp(http))
  await app.register(healthRoutes, { deps })
  await app.register(webRoutes, { bundle: deps.web ?? new WebBundle() })
  await app.register(async (v1) => {
    await v1.register(auth, { tokens: deps.tokens, store: deps.store })
    await v1.register(meRoutes, { deps })
    await v1.register(syncRoutes, { deps })
    for (const routes of [conversationsRoutes, membersRoutes, eventsRoutes, messagesRoutes]) {
      await v1.register(routes, { deps, prefix: '/conversations' })
    }
    for (const routes of deps.routes ?? []) await v1.register(routes)
  }, { prefix: '/v1' })
  // callers only listen, inject and close: the plain instance type spares them the
  // type provider and pino generics
  return app as unknown as FastifyInstance
}
