// Delivered/read receipts (DESIGN.md §3 conv/<c>/read, §4, §6): the MQTT topic and the
// REST route over one service (core/receipts/service.ts), which checks each receipt,
// coalesces the store writes per conversation and publishes the `receipts` summaries.
// A receipt is consumed here: the raw packet never reaches a subscriber
// (broker/patches/drop-raw-chat-packets.ts), and a bad one is answered with an error
// event on the sender's inbox while the connection stays up.
import type { Client, PublishPacket } from 'aedes'
import { definePlugin, type PluginContext } from '../../broker/plugin.js'
import { identityOf } from '../../broker/identity.js'
import { ConversationParams, Failure, ReceiptRequest, ReceiptResult, ThreadlineError } from '../../schemas/index.js'
import { chatTopicOf, inboxTopic } from '../../core/topics.js'
import { errorEnvelope } from '../../core/messages/envelopes.js'
import { DEFAULT_RECEIPT_LIMITS, RECEIPTS_SERVICE, ReceiptService } from '../../core/receipts/service.js'
import { TELEMETRY } from '../../core/telemetry.js'

export interface ReceiptsOptions {
  /** THREADLINE_RECEIPT_WINDOW_MS: how long receipts are coalesced before they are written */
  readonly windowMs: number
}

/** A refused receipt is answered with an error event on the sender's inbox; the connection stays up. */
function answer (ctx: PluginContext, client: Client, topic: string, userId: string, convId: string, err: unknown): void {
  let error: ThreadlineError
  if (err instanceof ThreadlineError) error = err
  else {
    ctx.log.error({ err, clientId: client.id, topic }, 'receipt failed')
    error = new ThreadlineError('internal', 'internal server error')
  }
  ctx.publish(inboxTopic(userId), JSON.stringify(errorEnvelope(error, { conv_id: convId })))
    .catch((e: unknown) => ctx.log.error({ err: e }, 'error event not published'))
}

// ~500 receipts per message in a 250-member group (issue 12): nothing here is allocated
// per receipt unless the store must be asked or the receipt is refused
function handleRead (ctx: PluginContext, service: ReceiptService, client: Client, packet: PublishPacket, convId: string): void | Promise<void> {
  const identity = identityOf(client)
  if (identity === null) return // the ACL refuses chat topics to anonymous clients
  const userId = identity.userId
  try {
    const pending = service.receive(userId, convId, packet.payload)
    // the PUBACK of a receipt that needs a store read waits for it: a client that floods
    // such receipts is slowed down, nobody else
    if (pending !== undefined) return pending.catch((err: unknown) => answer(ctx, client, packet.topic, userId, convId, err))
  } catch (err) {
    answer(ctx, client, packet.topic, userId, convId, err)
  }
}

export const receiptsPlugin = definePlugin<ReceiptsOptions>({
  name: 'receipts',
  dependencies: ['auth', 'acl'],
  config: (env) => ({ windowMs: env.integer('THREADLINE_RECEIPT_WINDOW_MS', 500, 0, 60_000) }),
  async setup (ctx, options) {
    const service = new ReceiptService(
      ctx.store,
      (topic, payload, opts) => ctx.publish(topic, payload, opts),
      ctx.membership,
      ctx.log.child({ plugin: 'receipts' }),
      { ...DEFAULT_RECEIPT_LIMITS, windowMs: options.windowMs, maxPayloadBytes: ctx.config.maxPayloadBytes },
      ctx.services.find(TELEMETRY))
    ctx.services.provide(RECEIPTS_SERVICE, service)
    return () => service.stop()
  },
  hooks (ctx) {
    const service = ctx.services.get(RECEIPTS_SERVICE)
    return {
      authorizePublish (client, packet) {
        // every PUBLISH passes here, sends included: a suffix test before any parsing
        if (!packet.topic.endsWith('/read')) return
        const topic = chatTopicOf(packet)
        if (topic?.kind === 'read') return handleRead(ctx, service, client, packet, topic.convId)
      },
      eventsCommitted (events) {
        for (const e of events) service.noteCommitted(e.envelope.conv_id, e.envelope.seq)
      }
    }
  },
  routes (ctx) {
    const service = ctx.services.get(RECEIPTS_SERVICE)
    return async (app) => {
      app.post('/conversations/:id/receipts', {
        schema: {
          tags: ['receipts'],
          summary: 'Mark events delivered or read up to seq (as conv/<c>/read does); answers your markers as they are with it applied. Stored within the coalescing window',
          params: ConversationParams,
          body: ReceiptRequest,
          response: { 202: ReceiptResult, '4xx': Failure, 503: Failure }
        }
      }, async (request, reply) => {
        const { id } = request.params as { id: string }
        const result = await service.post(request.identity.userId, id, request.body as ReceiptRequest)
        return reply.code(202).send(result)
      })
    }
  }
})
