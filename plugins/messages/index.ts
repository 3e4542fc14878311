// conv/<c>/send over MQTT (DESIGN.md §3, §4): PUBACK only after the commit; a
// rejected send is PUBACKed and answered with an error event on the sender's inbox;
// when the store is down there is no PUBACK and the connection closes so the client's
// session resends.
import type { Client, PublishPacket } from 'aedes'
import type { PluginContext, ThreadlinePlugin } from '../../broker/plugin.js'
import { identityOf } from '../../broker/identity.js'
import { ThreadlineError } from '../../schemas/index.js'
import { chatTopicOf, inboxTopic } from '../../core/topics.js'
import { errorEnvelope } from '../../core/messages/envelopes.js'
import { clientMsgIdOf, parseJsonPayload } from '../../core/messages/parse-send.js'
import { SEND_SERVICE, type SendOrigin, type SendService } from '../../core/messages/send-service.js'

// An oversized payload is never parsed, but its client can only match the `too_large`
// answer to its pending send by client_msg_id: look for it near the start of the bytes.
// eslint-disable-next-line no-control-regex
const LEADING_CLIENT_MSG_ID = /"client_msg_id"\s*:\s*"([^"\\\u0000-\u001f]{1,64})"/
function leadingClientMsgId (payload: Buffer | string): string | undefined {
  const head = typeof payload === 'string' ? payload.slice(0, 512) : payload.subarray(0, 512).toString()
  return LEADING_CLIENT_MSG_ID.exec(head)?.[1]
}

/** Answers a refused send with an error event on the sender's inbox. */
function answerRefusal (ctx: PluginContext, userId: string, convId: string, packet: PublishPacket, body: unknown, err: ThreadlineError): void {
  const clientMsgId = clientMsgIdOf(body) ?? (err.code === 'too_large' ? leadingClientMsgId(packet.payload) : undefined)
  const envelope = errorEnvelope(err, { conv_id: convId, ...(clientMsgId !== undefined ? { client_msg_id: clientMsgId } : {}) })
  // the code and the ids, never the body: a refused send may still be someone's words
  ctx.log.info({ user: userId, conv_id: convId, client_msg_id: clientMsgId, code: err.code }, 'send refused')
  ctx.publish(inboxTopic(userId), JSON.stringify(envelope)).catch((e: unknown) => ctx.log.error({ err: e }, 'error event not published'))
}

const acknowledged = (): void => undefined

function handleSend (ctx: PluginContext, service: SendService, client: Client, packet: PublishPacket, convId: string): void | Promise<void> {
  const identity = identityOf(client)
  if (identity === null) return // the ACL refuses chat topics to anonymous clients
  // the PUBACK goes out when this hook settles: its latency is counted from here
  const origin: SendOrigin = { transport: 'mqtt', since: performance.now(), lane: client }
  let body: unknown
  try {
    // parsed first so that even a QoS 0 send's error names its client_msg_id
    body = parseJsonPayload(packet.payload, ctx.config.maxPayloadBytes)
    if (packet.qos === 0) throw new ThreadlineError('bad_request', 'sends need QoS 1: a QoS 0 send cannot be acknowledged')
  } catch (err) {
    service.refused(origin, err as ThreadlineError)
    answerRefusal(ctx, identity.userId, convId, packet, body, err as ThreadlineError)
    return
  }
  // every send takes this path: the only closure per send is the refusal's
  return service.send(identity.userId, convId, body, origin).then(acknowledged, (err: ThreadlineError) => {
    answerRefusal(ctx, identity.userId, convId, packet, body, err)
    // no PUBACK: closing the connection makes the client's session resend (DESIGN.md §4)
    if (err.code === 'unavailable') throw err
  })
}

export const messagesPlugin: ThreadlinePlugin = {
  name: 'messages',
  dependencies: ['auth', 'acl'],
  hooks (ctx) {
    const service = ctx.services.get(SEND_SERVICE)
    return {
      authorizePublish (client, packet) {
        const topic = chatTopicOf(packet)
        if (topic?.kind === 'send') return handleSend(ctx, service, client, packet, topic.convId)
      }
    }
  }
}
