// GET /v1/conversations/:id/events: history pages, with the messages among them folded.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ConversationParams, HistoryPage, HistoryQuery, HISTORY_PAGE_DEFAULT, ThreadlineError } from '../../schemas/index.js'
import { toEnvelope } from '../../core/messages/envelopes.js'
import { foldMessages } from '../../core/messages/fold.js'
import { eventPage, eventsTargeting } from '../../core/messages/history.js'
import { errorResponses, type RouteOptions } from './common.js'

export const eventsRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, { deps }) => {
  app.get('/:id/events', {
    schema: {
      tags: ['messages'],
      summary: 'History: no bound → the newest events; after_seq → the oldest above it; before_seq → the newest below it',
      params: ConversationParams,
      querystring: HistoryQuery,
      response: { 200: HistoryPage, ...errorResponses }
    }
  }, async (request) => {
    const convId = request.params.id.toLowerCase()
    if (!await deps.membership.isMember(convId, request.identity.userId)) {
      throw new ThreadlineError('not_member', `you are not a member of conversation ${convId}`)
    }
    const { after_seq: afterSeq, before_seq: beforeSeq } = request.query
    const { rows, hasMore } = await eventPage(deps.store, convId, {
      ...(afterSeq !== undefined ? { afterSeq } : {}),
      ...(beforeSeq !== undefined ? { beforeSeq } : {}),
      limit: request.query.limit ?? HISTORY_PAGE_DEFAULT
    })
    // edits, deletes and reactions may come after the page: fetch them by target
    const targeting = await eventsTargeting(deps.store, convId, rows.filter(r => r.type === 'text').map(r => r.seq))
    return { events: rows.map(toEnvelope), messages: foldMessages(rows, targeting), has_more: hasMore }
  })
}
