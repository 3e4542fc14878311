// /v1/conversations: create, list (newest activity first), details.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  Conversation, ConversationList, ConversationParams, ConversationView, CreateConversationBody,
  ListConversationsQuery, ThreadlineError, CONVERSATIONS_PAGE_DEFAULT
} from '../../schemas/index.js'
import { createConversation } from '../../core/conversations/create.js'
import { conversationViews } from '../../core/conversations/views.js'
import { decodeCursor, encodeCursor } from '../cursor.js'
import { errorResponses, type RouteOptions } from './common.js'

const tags = ['conversations']

export const conversationsRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, { deps }) => {
  // no-slash: /v1/conversations only, not also /v1/conversations/ (one route in OpenAPI)
  app.post('/', {
    prefixTrailingSlash: 'no-slash',
    schema: {
      tags,
      summary: 'Start a direct conversation (one per pair: 201 once, then 200 with the same one) or a group',
      body: CreateConversationBody,
      response: { 200: Conversation, 201: Conversation, ...errorResponses }
    }
  }, async (request, reply) => {
    const { created, conversation } = await createConversation(deps, request.log, request.identity.userId, request.body)
    return reply.code(created ? 201 : 200).send(conversation)
  })

  app.get('/', {
    prefixTrailingSlash: 'no-slash',
    schema: {
      tags,
      summary: 'Your conversations, newest activity first, with last message, unread count and your markers',
      querystring: ListConversationsQuery,
      response: { 200: ConversationList, ...errorResponses }
    }
  }, async (request) => {
    const limit = request.query.limit ?? CONVERSATIONS_PAGE_DEFAULT
    const after = request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor)
    const rows = await conversationViews(deps.store, request.identity.userId, { ...(after ? { after } : {}), limit: limit + 1 })
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return {
      conversations: page.map(r => r.view),
      next_cursor: rows.length > limit && last ? encodeCursor(last.position) : null
    }
  })

  app.get('/:id', {
    schema: {
      tags,
      summary: 'One conversation as you see it (members only)',
      params: ConversationParams,
      response: { 200: ConversationView, ...errorResponses }
    }
  }, async (request) => {
    const id = request.params.id.toLowerCase()
    const [row] = await conversationViews(deps.store, request.identity.userId, { convId: id, limit: 1 })
    // unknown and not-yours answer alike: we never reveal whether a conversation exists
    if (!row) throw new ThreadlineError('not_member', `you are not a member of conversation ${id}`)
    return row.view
  })
}
