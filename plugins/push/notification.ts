// What one push says (DESIGN.md §4 "Push only when nobody is there"): the messages a user
// missed within one window, summed up as one notification.

/** What one user missed in one conversation within a window. */
export interface Tally {
  readonly convId: string
  count: number
  lastSeq: number
  lastSender: string
  lastText: string
  /** the order the window saw the conversation's last message in: the newest wins the summary */
  lastOrder: number
  /** up to two: all the summary needs to know is "one sender" or "several" */
  readonly senders: Set<string>
}

export interface ConversationInfo {
  readonly type: 'direct' | 'group'
  readonly title: string | null
}

/** One notification, whatever the provider. */
export interface Notification {
  /** the group's title or the sender's name; null when it sums up several conversations */
  readonly title: string | null
  readonly body: string
  /** the user's unread messages over all conversations, at most UNREAD_COUNT_MAX ("999 or more") */
  readonly badge: number
  /** the newest message's conversation and seq: where a tap takes the app */
  readonly convId: string
  readonly seq: number
  /** how many messages it stands for */
  readonly messages: number
}

/** Longest message text quoted, in code points; the payload limits are 4 KB on both services. */
export const MAX_QUOTE = 200

export function quote (text: string): string {
  const points = [...text.replace(/\s+/g, ' ').trim()]
  return points.length <= MAX_QUOTE ? points.join('') : points.slice(0, MAX_QUOTE - 1).join('') + '…'
}

/**
 * "Bob: hey" for one message, "Bob: 5 new messages" for more from one sender,
 * "5 new messages" from several, "3 conversations: 7 new messages" across conversations.
 */
export function compose (tallies: readonly Tally[], names: ReadonlyMap<string, string>, conversations: ReadonlyMap<string, ConversationInfo>, badge: number): Notification {
  const newest = tallies.reduce((a, b) => (b.lastOrder > a.lastOrder ? b : a))
  const messages = tallies.reduce((n, t) => n + t.count, 0)
  const base = { badge, convId: newest.convId, seq: newest.lastSeq, messages }
  if (tallies.length > 1) return { ...base, title: null, body: `${tallies.length} conversations: ${messages} new messages` }
  const sender = names.get(newest.lastSender) ?? newest.lastSender
  const conv = conversations.get(newest.convId)
  const title = conv?.type === 'group' && conv.title !== null ? conv.title : sender
  if (messages === 1) return { ...base, title, body: `${sender}: ${quote(newest.lastText)}` }
  if (newest.senders.size === 1) return { ...base, title, body: `${sender}: ${messages} new messages` }
  return { ...base, title, body: `${messages} new messages` }
}
