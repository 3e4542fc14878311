// The topic grammar of DESIGN.md §3, parsed once for every hook that needs it.
import { isId, isUuid } from '../schemas/ids.js'

export type ChatTopic =
  | { readonly kind: 'send' | 'typing' | 'read' | 'events' | 'receipts', readonly convId: string }
  | { readonly kind: 'inbox' | 'presence-set', readonly userId: string }
  | { readonly kind: 'presence', readonly userId: string }

/**
 * user/, conv/, presence/, $SYS/ and $threadline/ belong to Threadline; everything else
 * is an open topic. Other `$` topics are open too: a plain broker accepts them (the
 * conformance suites publish to `$test/…`), and Threadline has no use for them.
 */
export function isChatNamespace (topic: string): boolean {
  return topic.startsWith('user/') || topic.startsWith('conv/') || topic.startsWith('presence/') ||
    topic === 'user' || topic === 'conv' || topic === 'presence' || isReservedDollar(topic)
}

export function isReservedDollar (topic: string): boolean {
  return topic.startsWith('$SYS/') || topic === '$SYS' || topic.startsWith('$threadline/') || topic === '$threadline'
}

/**
 * `$share/…` (MQTT 5 shared subscriptions, which some 3.1.1 brokers accept too). Aedes 1.x
 * has none: it would store `$share/<group>/<filter>` as a literal filter that no topic
 * ever matches, so a granted one would deliver nothing. Refused until that changes.
 */
export function isSharedSubscription (filter: string): boolean {
  return filter.startsWith('$share/') || filter === '$share'
}

const CONV_KINDS = new Set(['send', 'typing', 'read', 'events', 'receipts'])

/**
 * A concrete (wildcard-free) chat topic, or null when the topic is not one of the
 * design's. Conversation ids must be UUIDs except on `send`, where a bad id is a
 * rejected send (bad_request), not a protocol violation.
 */
export function parseChatTopic (topic: string): ChatTopic | null {
  const parts = topic.split('/')
  if (parts.length === 3 && parts[0] === 'conv' && CONV_KINDS.has(parts[2] as string)) {
    const convId = parts[1] as string
    const kind = parts[2] as 'send' | 'typing' | 'read' | 'events' | 'receipts'
    if (convId === '' || convId.includes('+') || convId.includes('#')) return null
    if (kind !== 'send' && !isUuid(convId)) return null
    return { kind, convId }
  }
  if (parts.length === 3 && parts[0] === 'user' && isId(parts[1] as string)) {
    if (parts[2] === 'inbox') return { kind: 'inbox', userId: parts[1] as string }
    if (parts[2] === 'presence') return { kind: 'presence-set', userId: parts[1] as string }
  }
  if (parts.length === 2 && parts[0] === 'presence' && isId(parts[1] as string)) {
    return { kind: 'presence', userId: parts[1] as string }
  }
  return null
}

const PARSED = Symbol('threadline.chatTopic')
type Memo = { topic: string, [PARSED]?: ChatTopic | false }

/** the topic chatTopicOf parsed last, and what it found (the answers are never changed) */
let lastTopic: string | null = null
let lastParsed: ChatTopic | null = null

/**
 * parseChatTopic for a packet, parsed once: every plugin's hook asks it of every PUBLISH
 * (and the ACL of every delivery), so the answer is kept on the packet object. Aedes hands
 * each subscriber its own copy of a packet, one after the other: the topic parsed last is
 * remembered too, so a publish is parsed once however many receive it.
 */
export function chatTopicOf (packet: { topic: string }): ChatTopic | null {
  const memo = packet as Memo
  const known = memo[PARSED]
  if (known !== undefined) return known === false ? null : known
  const topic = packet.topic
  if (topic !== lastTopic) {
    lastParsed = parseChatTopic(topic)
    lastTopic = topic
  }
  memo[PARSED] = lastParsed ?? false
  return lastParsed
}

export const inboxTopic = (userId: string): string => `user/${userId}/inbox`
export const eventsTopic = (convId: string): string => `conv/${convId}/events`
export const typingTopic = (convId: string): string => `conv/${convId}/typing`
export const receiptsTopic = (convId: string): string => `conv/${convId}/receipts`
export const presenceTopic = (userId: string): string => `presence/${userId}`
export const INTEGRATOR_EVENTS_FILTER = 'conv/+/events'
