// /v1/conversations/:id/members: group membership and your own member settings.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  AddMembersBody, Conversation, ConversationParams, MemberParams, MemberSettings, MemberSettingsBody, NoContent
} from '../../schemas/index.js'
import { addMembers, removeMember } from '../../core/membership/members.js'
import { setMute } from '../../core/membership/mute.js'
import { errorResponses, type RouteOptions } from './common.js'

const tags = ['conversations']

export const membersRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, { deps }) => {
  app.post('/:id/members', {
    schema: {
      tags,
      summary: 'Add members to a group (group admins)',
      params: ConversationParams,
      body: AddMembersBody,
      response: { 200: Conversation, ...errorResponses }
    }
  }, async (request) => {
    return await addMembers(deps, request.log, request.identity.userId, request.params.id.toLowerCase(), request.body.user_ids)
  })

  app.delete('/:id/members/:user_id', {
    schema: {
      tags,
      summary: 'Remove a member from a group (group admins), or leave it yourself',
      params: MemberParams,
      response: { 204: NoContent, ...errorResponses }
    }
  }, async (request, reply) => {
    await removeMember(deps, request.log, request.identity.userId, request.params.id.toLowerCase(), request.params.user_id)
    return reply.code(204).send(null)
  })

  app.patch('/:id/members/me', {
    schema: {
      tags,
      summary: 'Your own settings in this conversation',
      params: ConversationParams,
      body: MemberSettingsBody,
      response: { 200: MemberSettings, ...errorResponses }
    }
  }, async (request) => {
    return await setMute(deps.store, request.params.id.toLowerCase(), request.identity.userId, request.body.muted_until)
  })
}
