// What "unread" means (DESIGN.md §6 unread_count), once: text events from others above
// the member's own read_seq, not deleted. The conversation list counts it per
// conversation; push counts it per user for the badge.
import type { Queryable } from '../store.js'

/**
 * SQL condition: event `e` is unread for the member row `m` (of user `m.user_id`).
 * `e` and `m` are the aliases the caller's query gives events and members.
 */
export function unreadCondition (e: string, m: string): string {
  return `${e}.conv_id = ${m}.conv_id AND ${e}.seq > ${m}.read_seq AND ${e}.type = 'text' AND ${e}.sender_id <> ${m}.user_id
    AND NOT EXISTS (SELECT 1 FROM events d WHERE d.conv_id = ${e}.conv_id AND d.target_seq = ${e}.seq AND d.type = 'delete')`
}

/** Each user's unread messages over all their conversations: one query for all of them. */
export async function totalUnread (q: Queryable, userIds: readonly string[]): Promise<Map<string, number>> {
  const totals = new Map<string, number>(userIds.map(u => [u, 0]))
  if (userIds.length === 0) return totals
  const rows = await q.query<{ user_id: string, unread: number }>(
    `SELECT m.user_id, count(u.seq)::int AS unread
     FROM members m JOIN events u ON ${unreadCondition('u', 'm')}
     WHERE m.user_id = ANY($1::text[])
     GROUP BY m.user_id`, [userIds])
  for (const r of rows) totals.set(r.user_id, r.unread)
  return totals
}
