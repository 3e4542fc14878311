// What the open conversation shows, computed without the DOM: the folded messages in seq
// order, then this device's sends the server has not stored yet, each own message with
// its mark (pending, sent, delivered, read, failed). Kept apart from the page so it can be
// tested without a browser.
import type { ConversationView, Message, OutboxEntry, ReceiptsSummary } from '../sdk/index.js'

export type Mark = 'pending' | 'sent' | 'delivered' | 'read' | 'failed'

const RANK: Record<Exclude<Mark, 'failed'>, number> = { pending: 0, sent: 1, delivered: 2, read: 3 }

export interface TimelineItem {
  /** stable across pending → stored: the client_msg_id when known, else the seq */
  key: string
  seq: number | null
  sender_id: string
  own: boolean
  text: string
  edited: boolean
  deleted: boolean
  reactions: Record<string, string[]>
  ts: string | null
  /** own messages only */
  mark: Mark | null
  /** why a send failed */
  error: string | null
}

/**
 * Other members' delivered/read markers per conversation, from `receipts` summaries.
 * Applied with max: summaries may arrive out of order, and a lower value is older.
 */
export class Markers {
  readonly #byConv = new Map<string, Map<string, { delivered: number, read: number }>>()

  apply (summary: ReceiptsSummary): void {
    let conv = this.#byConv.get(summary.conv_id)
    if (conv === undefined) this.#byConv.set(summary.conv_id, (conv = new Map()))
    for (const m of summary.markers) {
      const old = conv.get(m.user_id) ?? { delivered: 0, read: 0 }
      const read = Math.max(old.read, m.read_seq)
      conv.set(m.user_id, { read, delivered: Math.max(old.delivered, m.delivered_seq, read) })
    }
  }

  /**
   * What the others have done with message `seq`: read once every other member read it,
   * delivered once it reached every one of them (a group's ✓✓ means all of them).
   */
  markOf (convId: string, seq: number, others: readonly string[]): 'sent' | 'delivered' | 'read' {
    if (others.length === 0) return 'sent'
    const conv = this.#byConv.get(convId)
    const all = (field: 'delivered' | 'read'): boolean => others.every(u => (conv?.get(u)?.[field] ?? 0) >= seq)
    return all('read') ? 'read' : all('delivered') ? 'delivered' : 'sent'
  }
}

const higher = (a: Mark, b: Mark): Mark => {
  if (a === 'failed' || b === 'failed') return 'failed'
  return RANK[a] >= RANK[b] ? a : b
}

/**
 * What the outbox knows: pending, stored, refused. Its `delivered`/`read` mean "by some
 * other member"; the page's ticks mean every other member (Markers), which in a direct
 * conversation is the same.
 */
const outboxMark = (entry: OutboxEntry): Mark => entry.status === 'delivered' || entry.status === 'read' ? 'sent' : entry.status

export interface TimelineInput {
  me: string
  convId: string
  /** the conversation's members other than me */
  others: readonly string[]
  messages: readonly Message[]
  /** the client's whole outbox; entries of other conversations are skipped */
  outbox: readonly OutboxEntry[]
  markers: Markers
}

export function timeline (input: TimelineInput): TimelineItem[] {
  const texts = input.outbox.filter(e => e.conv_id === input.convId && e.type === 'text')
  const bySeq = new Map<number, OutboxEntry>()
  const byMsgId = new Map<string, OutboxEntry>()
  for (const e of texts) {
    if (e.seq !== undefined) bySeq.set(e.seq, e)
    byMsgId.set(e.client_msg_id, e)
  }
  const items: TimelineItem[] = []
  const shown = new Set<string>()
  for (const m of input.messages) {
    const own = m.sender_id === input.me
    const entry = bySeq.get(m.seq) ?? (m.client_msg_id !== undefined ? byMsgId.get(m.client_msg_id) : undefined)
    let mark: Mark | null = null
    if (own) {
      mark = input.markers.markOf(input.convId, m.seq, input.others)
      if (entry !== undefined) mark = higher(mark, outboxMark(entry))
    }
    const key = entry?.client_msg_id ?? m.client_msg_id ?? `seq:${m.seq}`
    shown.add(key)
    items.push({
      key,
      seq: m.seq,
      sender_id: m.sender_id,
      own,
      text: m.text,
      edited: m.edited,
      deleted: m.deleted,
      reactions: m.reactions,
      ts: m.ts,
      mark,
      error: null
    })
  }
  // sends not in the folded messages yet: pending or failed ones, and stored ones whose
  // event has not arrived (their seq places them)
  const waiting = texts.filter(e => !shown.has(e.client_msg_id))
  for (const e of waiting) {
    const stored = e.seq !== undefined && e.status !== 'failed'
    items.push({
      key: e.client_msg_id,
      seq: e.seq ?? null,
      sender_id: input.me,
      own: true,
      text: e.text ?? '',
      edited: false,
      deleted: false,
      reactions: {},
      ts: e.ts ?? null,
      mark: stored ? higher(input.markers.markOf(input.convId, e.seq as number, input.others), outboxMark(e)) : outboxMark(e),
      error: e.error !== undefined ? `${e.error.code}: ${e.error.message}` : null
    })
  }
  // stored first in seq order, then what waits for a seq in the order it was sent
  return items.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity))
}

/** Members of a conversation other than `me`. */
export const othersIn = (view: ConversationView, me: string): string[] =>
  view.members.map(m => m.user_id).filter(u => u !== me)

/** A group's title, or for a direct conversation the other member's name. */
export function titleOf (view: ConversationView, me: string): string {
  if (view.title !== null) return view.title
  const other = view.members.find(m => m.user_id !== me)
  return other?.display_name ?? other?.user_id ?? me
}

/** "bob is typing…", "bob and carol are typing…", "3 people are typing…" */
export function typingText (names: readonly string[]): string {
  if (names.length === 0) return ''
  if (names.length === 1) return `${names[0]} is typing…`
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`
  return `${names.length} people are typing…`
}
