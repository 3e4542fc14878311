// JSON bodies as Fastify parses them (secure-json-parse: __proto__ and constructor
// poisoning refused), except that an empty body means "no body": many clients send
// Content-Type: application/json on every request, a DELETE included. Any other
// Content-Type with a body is refused (415, see plugins/errors.ts).
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

async function jsonBodyPlugin (app: FastifyInstance): Promise<void> {
  const parse = app.getDefaultJsonParser('error', 'error')
  // JSON only: Fastify's default text/plain parser would hand a string to the schema and
  // answer "body must be object" (400) where 415 says what is wrong
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString()
    if (text === '') return done(null, undefined)
    parse(request, text, done)
  })
}

export default fp(jsonBodyPlugin, { name: 'threadline-json-body', fastify: '5.x' })
