// What the commands print for people (scripts use --json: one JSON object per line).
// Text written by other users is made safe for a terminal here: a message must not be
// able to move the cursor, recolour the screen or fake a line from someone else.
import type { ConversationView, FoldedMessage } from '../../schemas/rest.js'

// C0 and C1 control characters (ESC starts every terminal escape) and DEL; tab and newline
// are handled on their own below
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g

/** A message's text on the terminal: controls shown as �, later lines indented under the first. */
export function safeText (text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(CONTROL, '\ufffd').replace(/\n/g, '\n    ')
}

const pad2 = (n: number): string => String(n).padStart(2, '0')

/** HH:MM for today, YYYY-MM-DD HH:MM before, in local time. */
export function shortTime (iso: string, now = new Date()): string {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`
  if (d.toDateString() === now.toDateString()) return hm
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hm}`
}

export type MessageLike = Pick<FoldedMessage, 'seq' | 'sender_id' | 'text' | 'edited' | 'deleted' | 'reactions' | 'ts'> & { reply_to?: number }

function reactionList (reactions: Record<string, string[]>): string {
  const parts = Object.entries(reactions).filter(([, users]) => users.length > 0)
    .map(([emoji, users]) => `${safeText(emoji)} ${users.join(', ')}`)
  return parts.length === 0 ? '' : `  [${parts.join('; ')}]`
}

/** `#4 03:24 alice: Lunch at 12:30? (edited)  [🍕 bob]` */
export function messageLine (m: MessageLike, now?: Date): string {
  const head = `#${m.seq} ${shortTime(m.ts, now)} ${m.sender_id}:`
  if (m.deleted) return `${head} (deleted)`
  const reply = m.reply_to !== undefined ? ` (reply to #${m.reply_to})` : ''
  const edited = m.edited ? ' (edited)' : ''
  return `${head}${reply} ${safeText(m.text)}${edited}${reactionList(m.reactions)}`
}

/** A group's title, or for a direct conversation the other member's name. */
export function conversationName (c: Pick<ConversationView, 'type' | 'title' | 'members'>, me: string): string {
  if (c.title !== null && c.title !== '') return safeText(c.title)
  const others = c.members.filter(m => m.user_id !== me)
  const names = others.map(m => m.display_name !== undefined && m.display_name !== m.user_id ? `${safeText(m.display_name)} (${m.user_id})` : m.user_id)
  return names.join(', ') || me
}

/** One line per conversation: id, type, name, unread count, last message. */
export function conversationLines (list: ConversationView[], me: string): string[] {
  const rows = list.map(c => ({
    id: c.id,
    type: c.type,
    name: conversationName(c, me),
    unread: c.unread_count > 0 ? `${c.unread_count} unread` : '',
    last: c.last_message === null ? '' : `${c.last_message.sender_id}: ${safeText(c.last_message.text).split('\n')[0] ?? ''}`
  }))
  const width = (key: 'name' | 'unread'): number => Math.min(32, Math.max(0, ...rows.map(r => r[key].length)))
  const nameW = width('name')
  const unreadW = width('unread')
  return rows.map(r => `${r.id}  ${r.type.padEnd(6)}  ${r.name.padEnd(nameW)}  ${r.unread.padEnd(unreadW)}  ${r.last}`.trimEnd())
}
