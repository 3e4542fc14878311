// Who may publish and subscribe to what (DESIGN.md §2 and §3), checked at PUBLISH,
// at SUBSCRIBE and again at every delivery: Aedes 1.x stores every topic of a
// persistent session's SUBSCRIBE even when part of it got 0x80 (session-prune.ts removes
// them again, a little later), and a member removed from a conversation keeps old
// subscriptions.
import type { AedesPublishPacket, Client } from 'aedes'
import type { PluginContext, ThreadlinePlugin } from '../../broker/plugin.js'
import { ConnectRefusal } from '../../broker/plugin.js'
import { identityOf, type Identity } from '../../broker/identity.js'
import { INTEGRATOR_EVENTS_FILTER, chatTopicOf, isChatNamespace, parseChatTopic, isSharedSubscription } from '../../core/topics.js'
import { PRESENCE_SERVICE } from '../../core/presence/service.js'
import { noteRefused, pruneRefusedTopics } from './session-prune.js'

class ProtocolViolation extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ProtocolViolation'
  }
}

function openTopicsAllowed (ctx: PluginContext, identity: Identity | null): boolean {
  switch (ctx.config.openTopics) {
    case 'none': return false
    case 'authenticated': return identity !== null
    case 'anonymous': return true
  }
}

/** Client → broker topics of the design; anything else in a chat namespace closes the connection. */
function checkPublish (ctx: PluginContext, client: Client, packet: { topic: string }): void {
  const topic = packet.topic
  const identity = identityOf(client)
  if (!isChatNamespace(topic)) {
    if (!openTopicsAllowed(ctx, identity)) throw new ProtocolViolation(`publishing to ${topic} is not allowed (THREADLINE_OPEN_TOPICS=${ctx.config.openTopics})`)
    return
  }
  if (identity === null) throw new ProtocolViolation('chat topics need a token')
  const parsed = chatTopicOf(packet)
  if (parsed === null) throw new ProtocolViolation(`${topic} is not a topic clients publish to`)
  switch (parsed.kind) {
    case 'send': case 'typing': case 'read':
      break
    case 'presence-set':
      if (parsed.userId !== identity.userId) throw new ProtocolViolation('only your own presence can be set')
      break
    default:
      throw new ProtocolViolation(`only the broker publishes to ${topic}`)
  }
}

async function checkSubscribe (ctx: PluginContext, identity: Identity | null, filter: string): Promise<boolean> {
  if (isSharedSubscription(filter)) return false
  if (filter.startsWith('$SYS')) {
    // broker statistics name every connected clientId (<user>:<device>): admins, and
    // everyone in the anonymous development/conformance mode, only
    return identity?.role === 'admin' || (identity === null && ctx.config.openTopics === 'anonymous')
  }
  if (!isChatNamespace(filter) && !filter.startsWith('+') && !filter.startsWith('#')) {
    return openTopicsAllowed(ctx, identity)
  }
  if (identity === null) {
    // anonymous/open-topic clients may use wildcards that span namespaces; deliveries
    // from the chat namespaces are withheld from them in authorizeForward
    return (filter.startsWith('+') || filter.startsWith('#')) && openTopicsAllowed(ctx, identity)
  }
  if (filter === INTEGRATOR_EVENTS_FILTER) return identity.role === 'integrator' || identity.role === 'admin'
  const parsed = parseChatTopic(filter)
  if (parsed === null) return false // #, +/…, conv/<c>/#, $SYS/#, other users' shapes
  switch (parsed.kind) {
    case 'inbox': return parsed.userId === identity.userId
    case 'events': case 'typing': case 'receipts':
      return await ctx.membership.isMember(parsed.convId, identity.userId)
    case 'presence': return presenceDecided(ctx, identity.userId, parsed.userId)
    default: return false // send, read, user/<u>/presence: client → broker only
  }
}

/**
 * presence/<u>: one's own always. Whose presence others may see is the presence plugin's
 * to decide (its SUBSCRIBE and delivery hooks run after these, and the first refusal
 * wins); without that plugin nobody sees anyone else's.
 */
function presenceDecided (ctx: PluginContext, viewer: string, subject: string): boolean {
  return viewer === subject || ctx.services.find(PRESENCE_SERVICE) !== undefined
}

/**
 * The will of a CONNECT. Aedes keeps it on the client (`_will`) from before the
 * authenticate hooks run until the session is set up.
 */
function willTopicOf (client: Client): string | null {
  return (client as unknown as { _will?: { topic?: string } | null })._will?.topic ?? null
}

/**
 * A will is checked at CONNECT, once and for all: when a node dies, another node
 * publishes its clients' wills with no client attached, and such packets pass every
 * publish check (broker/registry.ts lets broker-originated packets through). Wills may
 * use the open topics the policy allows; never the chat namespaces, where a raw packet
 * must not reach a subscriber and no plugin would act on an orphaned one.
 */
function checkWill (ctx: PluginContext, client: Client): void {
  const topic = willTopicOf(client)
  if (topic === null) return
  if (isChatNamespace(topic)) throw new ConnectRefusal(5, `a will may not use the chat topic ${topic}`)
  if (!openTopicsAllowed(ctx, identityOf(client))) {
    throw new ConnectRefusal(5, `a will on ${topic} is not allowed (THREADLINE_OPEN_TOPICS=${ctx.config.openTopics})`)
  }
}

const INBOX_PREFIX = 'user/'
const INBOX_SUFFIX = '/inbox'

/** topic === inboxTopic(userId), without building the string (user ids have no `/`) */
function isInboxOf (topic: string, userId: string): boolean {
  return topic.length === INBOX_PREFIX.length + userId.length + INBOX_SUFFIX.length &&
    topic.startsWith(INBOX_PREFIX) && topic.endsWith(INBOX_SUFFIX) && topic.startsWith(userId, INBOX_PREFIX.length)
}

/** The delivery-time check: synchronous, on every packet to every client. */
function checkForward (ctx: PluginContext, client: Client, packet: AedesPublishPacket): boolean {
  const topic = packet.topic
  if (!isChatNamespace(topic)) return true
  // $SYS: clients reach it only through filters the ACL allowed. Any other `$` topic is
  // the broker's own (the membership channel) and never leaves it.
  if (topic.startsWith('$')) return topic.startsWith('$SYS/')
  const identity = identityOf(client)
  if (identity === null) return false
  // most deliveries are of the client's own inbox: compared where it lies, nothing parsed
  if (isInboxOf(topic, identity.userId)) return true
  const parsed = chatTopicOf(packet)
  if (parsed === null) return false
  switch (parsed.kind) {
    case 'inbox': return parsed.userId === identity.userId
    case 'events': case 'typing': case 'receipts':
      return ctx.membership.convsOf(identity.userId)?.has(parsed.convId) ?? false
    case 'presence': return presenceDecided(ctx, identity.userId, parsed.userId)
    default: return false // raw send/read/presence packets never reach subscribers
  }
}

export const aclPlugin: ThreadlinePlugin = {
  name: 'acl',
  dependencies: ['auth'],
  async setup (ctx) {
    return pruneRefusedTopics(ctx.broker, ctx.log.child({ plugin: 'acl' }))
  },
  hooks: (ctx) => {
    const log = ctx.log.child({ plugin: 'acl' })
    return {
      authenticate (client) {
        try {
          checkWill(ctx, client)
        } catch (err) {
          log.info({ clientId: client.id, reason: (err as Error).message }, 'connect refused: will not allowed')
          throw err
        }
      },
      authorizePublish (client, packet) {
        try {
          checkPublish(ctx, client, packet)
          // a send over the limit is answered too_large by the messages plugin; any other
          // oversized packet has no one to answer it and closes the connection
          if (packet.payload.length > ctx.config.maxPayloadBytes && chatTopicOf(packet)?.kind !== 'send') {
            throw new ProtocolViolation(`payload of ${packet.payload.length} bytes is over THREADLINE_MAX_PAYLOAD_BYTES (${ctx.config.maxPayloadBytes})`)
          }
        } catch (err) {
          log.info({ clientId: client.id, topic: packet.topic, reason: (err as Error).message }, 'publish refused: closing the connection')
          throw err
        }
      },
      async authorizeSubscribe (client, sub) {
        const ok = await checkSubscribe(ctx, identityOf(client), sub.topic)
        if (!ok) {
          const reason = isSharedSubscription(sub.topic) ? 'shared subscriptions are not supported' : 'not allowed'
          log.info({ clientId: client.id, topic: sub.topic, reason }, 'subscription refused')
          noteRefused(client, sub.topic)
          return null
        }
        // Granted as asked: the broker publishes inbox/events at QoS 1 and typing,
        // receipts, presence at QoS 0, and delivery takes the lower of the two.
        return sub
      },
      authorizeForward (client, packet) {
        return checkForward(ctx, client, packet) ? packet : null
      }
    }
  }
}
