// The sidecar's one error handler: every failure leaves as `{"code","message"}` with the
// catalog's status (schemas/errors.ts, DESIGN.md §6). Internals never leak: an unexpected
// error is logged with its stack and answered with a bare 500.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { isUnavailable } from '../../broker/store/index.js'
import { ThreadlineError, type ErrorCode } from '../../schemas/index.js'

/**
 * A body that is not JSON: HTTP's own 415 (RFC 9110 §15.5.16), so generic clients and
 * proxies see what went wrong, with the catalog's `bad_request` code: the catalog has no
 * code of its own for it and a client fixes it like any bad request.
 */
class UnsupportedMediaType extends ThreadlineError {
  override readonly statusCode = 415
}

// Fastify's own request errors whose cause the client must fix.
const FASTIFY_CODES: Record<string, (err: FastifyError, limit: number) => ThreadlineError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: (_e, limit) => new ThreadlineError('too_large', `request body is over the ${limit}-byte limit`),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new ThreadlineError('bad_request', 'request body is not valid JSON'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (err) => new UnsupportedMediaType('bad_request', `Content-Type is not supported (use application/json): ${err.message}`)
}

const STATUS_CODES: Record<number, ErrorCode> = { 401: 'unauthorized', 404: 'not_found', 413: 'too_large', 429: 'rate_limited' }

/** The catalog error an error stands for, or null when it is a bug. */
export function toCatalogError (err: unknown, bodyLimit: number): ThreadlineError | null {
  if (err instanceof ThreadlineError) return err
  if (isUnavailable(err)) return new ThreadlineError('unavailable', 'the message store is unreachable; retry')
  const fe = err as Partial<FastifyError>
  const mapped = typeof fe.code === 'string' ? FASTIFY_CODES[fe.code] : undefined
  if (mapped) return mapped(fe as FastifyError, bodyLimit)
  // Other 4xx from Fastify or its JSON parser (a SyntaxError, proto poisoning, a
  // Content-Length mismatch): their messages are written for clients.
  const status = fe.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ThreadlineError(STATUS_CODES[status] ?? 'bad_request', fe.message ?? 'bad request')
  }
  return null
}

async function errorsPlugin (app: FastifyInstance, opts: { bodyLimit: number }): Promise<void> {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const known = toCatalogError(err, opts.bodyLimit)
    if (known === null) {
      request.log.error({ err }, 'request failed')
      // details stay in the log: nothing in them a client could act on
      return reply.code(500).send(new ThreadlineError('internal', 'internal server error').toBody())
    }
    if (known.statusCode >= 500) request.log.warn({ err }, 'request failed: %s', known.code)
    return reply.code(known.statusCode).send(known.toBody())
  })

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? ''
    return reply.code(404).send(new ThreadlineError('not_found', `no route ${request.method} ${path.slice(0, 200)}`).toBody())
  })
}

export default fp(errorsPlugin, { name: 'threadline-errors', fastify: '5.x' })
