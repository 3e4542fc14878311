// Conversations as one member sees them (list and details): the conversation, its last
// message folded with edits, the member's unread count, markers and mute. One SQL text
// for PostgreSQL and PGlite alike.
import type { ConversationView } from '../../schemas/index.js'
import { iso } from '../iso.js'
import type { Queryable } from '../store.js'
import { membersOf, toConversation, type ConversationRow } from './repo.js'
import { unreadCount } from './unread.js'

/** Position in the list: last activity in µs since the epoch, then id (both descending). */
export interface ListPosition { activityUs: number, id: string }

interface ViewRow extends ConversationRow {
  activity_us: number
  delivered_seq: number
  read_seq: number
  muted_until: Date | string | null
  unread_count: number
  lm_seq: number | null
  lm_sender_id: string | null
  lm_text: string | null
  lm_edited: boolean | null
  lm_ts: Date | string | null
}

// The page is cut first (`p`), so the per-conversation lookups run for its rows only.
// activity_us keeps the timestamp's full µs precision, which a JS Date would round to ms.
const VIEWS_SQL = `
SELECT p.id::text AS id, p.type, p.title, p.last_seq, p.created_at, p.activity_us,
       p.delivered_seq, p.read_seq, p.muted_until,
       ${unreadCount('p')} AS unread_count,
       lm.seq AS lm_seq, lm.sender_id AS lm_sender_id, coalesce(le.text, lm.text) AS lm_text,
       le.text IS NOT NULL AS lm_edited, lm.created_at AS lm_ts
FROM (
  SELECT c.id, c.id AS conv_id, m.user_id, c.type, c.title, c.last_seq, c.created_at, m.delivered_seq, m.read_seq, m.muted_until,
         (extract(epoch FROM c.last_event_at) * 1000000)::bigint AS activity_us
  FROM members m JOIN conversations c ON c.id = m.conv_id
  WHERE m.user_id = $1
    AND ($2::uuid[] IS NULL OR c.id = ANY($2::uuid[]))
    AND ($3::bigint IS NULL OR ((extract(epoch FROM c.last_event_at) * 1000000)::bigint, c.id) < ($3::bigint, $4::uuid))
  ORDER BY activity_us DESC, c.id DESC
  LIMIT $5
) p
LEFT JOIN LATERAL (
  SELECT e.seq, e.sender_id, e.body->>'text' AS text, e.created_at FROM events e
  WHERE e.conv_id = p.id AND e.type = 'text'
    AND NOT EXISTS (SELECT 1 FROM events d WHERE d.conv_id = e.conv_id AND d.target_seq = e.seq AND d.type = 'delete')
  ORDER BY e.seq DESC LIMIT 1
) lm ON true
LEFT JOIN LATERAL (
  SELECT x.body->>'text' AS text FROM events x
  WHERE x.conv_id = p.id AND x.target_seq = lm.seq AND x.type = 'edit'
  ORDER BY x.seq DESC LIMIT 1
) le ON true
ORDER BY p.activity_us DESC, p.id DESC`

export interface ViewQuery {
  /** one conversation (details) instead of a page of all */
  convId?: string
  /** these conversations (GET /v1/sync) instead of a page of all */
  convIds?: readonly string[]
  /** the page starts after this position */
  after?: ListPosition
  limit: number
}

export async function conversationViews (q: Queryable, userId: string, query: ViewQuery): Promise<Array<{ view: ConversationView, position: ListPosition }>> {
  const rows = await q.query<ViewRow>(VIEWS_SQL,
    [userId, query.convIds ?? (query.convId !== undefined ? [query.convId] : null), query.after?.activityUs ?? null, query.after?.id ?? null, query.limit])
  const members = await membersOf(q, rows.map(r => r.id))
  return rows.map(r => ({
    position: { activityUs: r.activity_us, id: r.id },
    view: {
      ...toConversation(r, members.get(r.id) ?? []),
      last_message: r.lm_seq === null
        ? null
        : { seq: r.lm_seq, sender_id: r.lm_sender_id as string, text: r.lm_text ?? '', edited: r.lm_edited === true, ts: iso(r.lm_ts as Date) },
      unread_count: r.unread_count,
      markers: { delivered_seq: r.delivered_seq, read_seq: r.read_seq },
      muted_until: r.muted_until === null ? null : iso(r.muted_until)
    }
  }))
}
