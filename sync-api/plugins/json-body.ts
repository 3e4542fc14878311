// JSON bodies as Fastify parses them (secure-json-parse: __proto__ and constructor
// poisoning refused), except that an empty body means "no body": many clients send
// Content-Type: application/json on every request, a DELETE included. Bytes that are not
// UTF-8 are refused, not repaired. Any other Content-Type with a body is refused (415, see
// plugins/errors.ts).
import { isUtf8 } from 'node:buffer'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ThreadlineError } from '../../schemas/index.js'

async function jsonBodyPlugin (app: FastifyInstance): Promise<void> {
  const parse = app.getDefaultJsonParser('error', 'error')
  // JSON only: Fastify's default text/plain parser would hand a string to the schema and
  // answer "body must be object" (400) where 415 says what is wrong
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    // decoding would turn invalid bytes into U+FFFD and store a text nobody sent
    if (!isUtf8(body as Buffer)) return done(new ThreadlineError('bad_request', 'body is not valid UTF-8'), undefined)
    const text = body.toString()
    if (text === '') return done(null, undefined)
    parse(request, text, done)
  })
}

export default fp(jsonBodyPlugin, { name: 'threadline-json-body', fastify: '5.x' })
