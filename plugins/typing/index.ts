// conv/<c>/typing and POST /v1/conversations/:id/typing (DESIGN.md §3, §6): members say
// they are typing, the broker forwards {"user_id","typing"} to the conversation's typing
// subscribers (the ACL checks membership at SUBSCRIBE and at every delivery). Ephemeral:
// no store write, and over MQTT not even a read (the sender's memberships are cached
// while it is connected). A forged user_id is ignored; a bad payload is answered with an
// error event on the sender's inbox and the connection stays up. Any QoS is accepted
// and acknowledged as MQTT says; the signal goes out at QoS 0 either way.
import type { Client, PublishPacket } from 'aedes'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { definePlugin, type PluginContext } from '../../broker/plugin.js'
import { identityOf } from '../../broker/identity.js'
import { errorEnvelope } from '../../core/messages/envelopes.js'
import { parseJsonPayload } from '../../core/messages/parse-send.js'
import { chatTopicOf, inboxTopic } from '../../core/topics.js'
import { TYPING_SERVICE, type TypingService } from '../../core/typing.js'
import {
  ConversationParams, Failure, NoContent, ThreadlineError, TYPING_MAX_BYTES, TypingRequest, compileCheck
} from '../../schemas/index.js'
import { TypingRelay } from './relay.js'
import { TypingThrottle } from './throttle.js'

export interface TypingOptions {
  /** THREADLINE_TYPING_INTERVAL_MS: at most one `true` per user and conversation per interval (0: no throttle) */
  readonly intervalMs: number
}

const checkTyping = compileCheck(TypingRequest, 'typing signal')

function notMember (convId: string): ThreadlineError {
  return new ThreadlineError('not_member', `you are not a member of conversation ${convId}`)
}

function onPublish (ctx: PluginContext, typing: TypingService, client: Client, packet: PublishPacket, convId: string): void {
  const identity = identityOf(client)
  if (identity === null) return // the ACL refuses chat topics to anonymous clients
  const answer = (err: ThreadlineError): void => {
    const envelope = errorEnvelope(err, { conv_id: convId })
    ctx.publish(inboxTopic(identity.userId), JSON.stringify(envelope))
      .catch((e: unknown) => ctx.log.error({ err: e }, 'error event not published'))
  }
  let body
  try {
    body = checkTyping(parseJsonPayload(packet.payload, TYPING_MAX_BYTES))
  } catch (err) {
    answer(err as ThreadlineError)
    return
  }
  const convs = ctx.membership.convsOf(identity.userId)
  // undefined: this node's membership cache is stale (its cluster channel is down) and
  // withholds every conversation delivery anyway: drop the signal, it is ephemeral
  if (convs === undefined) return
  // subscribers use the id as the store writes it; a topic may spell it in capitals
  const id = convId.toLowerCase()
  if (!convs.has(id)) {
    answer(notMember(convId))
    return
  }
  typing.signal(identity.userId, id, body.typing)
}

function typingRoutes (ctx: PluginContext, typing: TypingService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/conversations/:id/typing', {
      schema: {
        tags: ['conversations'],
        summary: 'Say you are typing (or stopped) in a conversation, as conv/<c>/typing does: members only, throttled, never stored',
        params: ConversationParams,
        body: TypingRequest,
        response: { 204: NoContent, '4xx': Failure, 503: Failure }
      }
    }, async (request, reply) => {
      const convId = request.params.id.toLowerCase()
      const userId = request.identity.userId
      // the cache when a device of the user is connected here; the store otherwise
      const member = ctx.membership.convsOf(userId)?.has(convId) ?? await ctx.membership.isMember(convId, userId)
      if (!member) throw notMember(convId)
      typing.signal(userId, convId, request.body.typing)
      return reply.code(204).send(null)
    })
  }
}

export const typingPlugin = definePlugin<TypingOptions>({
  name: 'typing',
  dependencies: ['auth', 'acl'],
  config: (env) => ({ intervalMs: env.integer('THREADLINE_TYPING_INTERVAL_MS', 1000, 0, 60_000) }),
  async setup (ctx, options) {
    ctx.services.provide(TYPING_SERVICE, new TypingRelay(ctx, new TypingThrottle(options.intervalMs)))
  },
  hooks (ctx) {
    const typing = ctx.services.get(TYPING_SERVICE)
    return {
      authorizePublish (client, packet) {
        const topic = chatTopicOf(packet)
        if (topic?.kind === 'typing') onPublish(ctx, typing, client, packet, topic.convId)
      }
    }
  },
  routes: (ctx) => typingRoutes(ctx, ctx.services.get(TYPING_SERVICE))
})
