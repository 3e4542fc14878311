// CORS for web apps served from other origins (THREADLINE_CORS_ORIGINS). Tokens travel in
// the Authorization header, never in cookies, so a page of another origin can only use
// the API with a token it already holds: no credentialed CORS, and allowing every origin
// gives nothing away. The preflight is answered in @fastify/cors' onRequest hook, before
// the /v1 token check, since browsers send it without the Authorization header.
import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { CorsOrigins } from '../../broker/config.js'

export const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']
export const CORS_HEADERS = ['Authorization', 'Content-Type']
/** how long a browser may reuse a preflight's answer: a changed policy reaches it within this */
export const CORS_MAX_AGE_S = 600

async function corsPlugin (app: FastifyInstance, opts: { origins: CorsOrigins }): Promise<void> {
  // no origin allowed: no CORS headers and no preflight route, as before CORS existed
  if (opts.origins !== '*' && opts.origins.length === 0) return
  await app.register(cors, {
    // a list is matched exactly and the matching origin echoed (with Vary: Origin)
    origin: opts.origins === '*' ? '*' : [...opts.origins],
    methods: CORS_METHODS,
    allowedHeaders: CORS_HEADERS,
    credentials: false,
    maxAge: CORS_MAX_AGE_S
  })
}

export default fp(corsPlugin, { name: 'threadline-cors', fastify: '5.x' })
