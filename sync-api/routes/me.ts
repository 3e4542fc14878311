// GET /v1/me: the caller's profile.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Me, ThreadlineError } from '../../schemas/index.js'
import { findMe } from '../../core/users.js'
import { errorResponses, type RouteOptions } from './common.js'

export const meRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, { deps }) => {
  app.get('/me', {
    schema: { tags: ['me'], summary: 'Your profile', response: { 200: Me, ...errorResponses } }
  }, async (request) => {
    const me = await findMe(deps.store, request.identity.userId)
    // the auth hook upserted the row; only a wiped database gets here
    if (me === null) throw new ThreadlineError('not_found', 'your user row is missing; reconnect')
    return me
  })
}
