// POST /v1/conversations/:id/messages: the same send as MQTT conv/<c>/send, through the
// same service, so sequencing, idempotency and fan-out are identical.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ConversationParams, SendRequest, SendResult } from '../../schemas/index.js'
import { bodyUnchecked, validatorCompiler } from '../validation.js'
import { errorResponses, type RouteOptions } from './common.js'

export const messagesRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, { deps }) => {
  app.post('/:id/messages', {
    schema: {
      tags: ['messages'],
      summary: 'Send a text, reaction, edit or delete; a retry with the same client_msg_id answers 200 with the original seq',
      params: ConversationParams,
      body: SendRequest,
      response: { 200: SendResult, 201: SendResult, ...errorResponses }
    },
    // parseSend (inside the service) is the one validator of a send, MQTT and HTTP alike,
    // and tells an oversized text (413 too_large) from a malformed one (400); the schema
    // above stays for OpenAPI and types
    validatorCompiler: bodyUnchecked(validatorCompiler)
  }, async (request, reply) => {
    // from the request's arrival (Fastify's clock is performance.now()) to this answer
    const origin = { transport: 'http' as const, since: performance.now() - reply.elapsedTime }
    const { created, envelope } = await deps.sends.send(request.identity.userId, request.params.id, request.body as unknown, origin)
    return reply.code(created ? 201 : 200).send({ conv_id: envelope.conv_id, seq: envelope.seq, ts: envelope.ts })
  })
}
