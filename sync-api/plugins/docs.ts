// OpenAPI generated from the routes' schemas (schemas/rest.ts), served at /docs (UI) and
// /docs/json. Must be registered before the routes so it sees them being added.
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

async function docsPlugin (app: FastifyInstance, opts: { version: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Threadline sync API',
        description: 'History sync, conversations and sends over HTTP. Errors are `{"code","message"}` with the matching status.',
        version: opts.version
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'the same token as MQTT CONNECT\'s password' }
        }
      },
      // every route needs the token unless it says otherwise (health does)
      security: [{ bearerAuth: [] }]
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
}

export default fp(docsPlugin, { name: 'threadline-docs', fastify: '5.x' })
