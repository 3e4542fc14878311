// The limits over MQTT: CONNECT attempts (authenticate) and publishes (authorizePublish).
//
// This plugin's hooks run first of all: an address over its CONNECT limit is refused
// before its token is verified or the store is asked anything (a reconnect storm must not
// take the store down), and a publish over its limit is answered here (ANSWERED) so that
// no later hook sees it. It answers only packets the ACL would let through (a chat topic
// of the design from a token holder, a signal within the payload limit, one's own
// presence): everything else goes on to the ACL, which closes the connection for it.
import type { Client, PublishPacket } from 'aedes'
import { ANSWERED, ConnectRefusal, type Answered, type ConnectInfo, type PluginContext } from '../../broker/plugin.js'
import { clientAddressOf } from '../../broker/client-address.js'
import { identityOf } from '../../broker/identity.js'
import { errorEnvelope } from '../../core/messages/envelopes.js'
import { clientMsgIdOf, parseJsonPayload } from '../../core/messages/parse-send.js'
import type { SendService } from '../../core/messages/send-service.js'
import { TokenError, type TokenService } from '../../core/tokens.js'
import { chatTopicOf, inboxTopic } from '../../core/topics.js'
import type { Limit } from './buckets.js'
import type { DeferredReceipts } from './deferred-receipts.js'
import { RateLimited, whenChecked, type Limiter } from './limiter.js'

export interface MqttLimits {
  readonly send: Limit | null
  readonly typing: Limit | null
  readonly receipts: Limit | null
  readonly presence: Limit | null
  readonly connectIp: Limit | null
  readonly connectUser: Limit | null
}

export interface MqttDeps {
  readonly ctx: PluginContext
  readonly limiter: Limiter
  readonly limits: MqttLimits
  readonly deferred: DeferredReceipts | null
  readonly tokens: TokenService
  readonly sends: Pick<SendService, 'refused'>
}

/** The client_msg_id of a raw send, undefined when the payload can't say (it is refused later anyway). */
function clientMsgIdIn (payload: Buffer | string, maxBytes: number): string | undefined {
  try {
    return clientMsgIdOf(parseJsonPayload(payload, maxBytes))
  } catch {
    return undefined
  }
}

function refuseSend (deps: MqttDeps, client: Client, packet: PublishPacket, userId: string, convId: string, waitMs: number): Answered {
  const { ctx } = deps
  // the client matches the answer to its pending send by client_msg_id: worth a parse, on refusals only
  const clientMsgId = clientMsgIdIn(packet.payload, ctx.config.maxPayloadBytes)
  const err = new RateLimited(`over your send rate (${ctx.config.sendRatePerS}/s, bursts of ${ctx.config.sendBurst}): retry in ${waitMs} ms`, waitMs)
  const envelope = errorEnvelope(err, { conv_id: convId, ...(clientMsgId !== undefined ? { client_msg_id: clientMsgId } : {}) })
  ctx.publish(inboxTopic(userId), JSON.stringify(envelope)).catch((e: unknown) => ctx.log.error({ err: e }, 'error event not published'))
  // counted with every other answered send (it never reaches the send service)
  deps.sends.refused({ transport: 'mqtt', since: performance.now() }, err)
  return ANSWERED
}

export function authorizePublish (deps: MqttDeps): (client: Client, packet: PublishPacket) => undefined | Answered | Promise<undefined | Answered> {
  const { limiter, limits, ctx } = deps
  const maxBytes = ctx.config.maxPayloadBytes
  return (client, packet) => {
    // every PUBLISH passes here: c(onv/…) and u(ser/…) before any parsing
    const c = packet.topic.charCodeAt(0)
    if (c !== 0x63 && c !== 0x75) return
    const topic = chatTopicOf(packet)
    if (topic === null) return
    const identity = identityOf(client)
    if (identity === null) return
    const userId = identity.userId
    switch (topic.kind) {
      case 'send': {
        if (limits.send === null) return
        const convId = topic.convId
        return whenChecked(limiter.check(limits.send, userId, 'user', userId),
          wait => wait === 0 ? undefined : refuseSend(deps, client, packet, userId, convId, wait))
      }
      case 'typing': case 'presence-set': {
        const limit = topic.kind === 'typing' ? limits.typing : limits.presence
        if (limit === null || packet.payload.length > maxBytes) return
        if (topic.kind === 'presence-set' && topic.userId !== userId) return
        // ephemeral: a signal over the limit is dropped without a word (an answer would cost more than the signal)
        return whenChecked(limiter.check(limit, userId, 'user', userId), wait => wait === 0 ? undefined : ANSWERED)
      }
      case 'read': {
        const limit = limits.receipts
        if (limit === null || packet.payload.length > maxBytes) return
        const convId = topic.convId
        const payload = packet.payload
        return whenChecked(limiter.check(limit, userId, 'user', userId), (wait) => {
          if (wait === 0) return undefined
          deps.deferred?.keep(userId, convId, payload, wait)
          return ANSWERED
        })
      }
    }
  }
}

/**
 * CONNECT attempts: per address first, before anything is verified; then per user, once
 * the token is (an unauthenticated client never spends a user's budget). Over either:
 * CONNACK 3 (server unavailable), which MQTT clients retry later, and the connection
 * closes. A token that does not verify is left to the auth plugin to refuse.
 */
export function authenticate (deps: MqttDeps): (client: Client, info: ConnectInfo) => void | Promise<void> {
  const { limiter, limits } = deps
  const byUser = (info: ConnectInfo): void | Promise<void> => {
    if (limits.connectUser === null || info.password === undefined) return
    let userId: string
    try {
      userId = deps.tokens.verify(info.password.toString('utf8')).sub
    } catch (err) {
      if (err instanceof TokenError) return
      throw err
    }
    if (info.username !== userId) return
    return whenChecked(limiter.check(limits.connectUser, userId, 'user', userId), (wait) => {
      if (wait > 0) throw new ConnectRefusal(3, `too many connection attempts for this user: retry in ${wait} ms`)
    })
  }
  return (client, info) => {
    if (limits.connectIp === null) return byUser(info)
    const ip = clientAddressOf(client)
    const wait = limiter.check(limits.connectIp, ip, 'ip', ip)
    const then = (wait: number): void | Promise<void> => {
      if (wait > 0) throw new ConnectRefusal(3, `too many connection attempts from ${ip}: retry in ${wait} ms`)
      return byUser(info)
    }
    return typeof wait === 'number' ? then(wait) : wait.then(then)
  }
}
