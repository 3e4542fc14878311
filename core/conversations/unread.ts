// What "unread" means (DESIGN.md §6 unread_count), once: text events from others above
// the member's own read_seq, not deleted. The conversation list counts it per
// conversation; push counts it per user for the badge.
//
// Both counts saturate at UNREAD_COUNT_MAX ("999 or more"): a member back after months in
// a busy group would otherwise make every list read, and every push to them, visit one row
// per message missed. No counter is kept instead: one would cost a write per member at
// every send, the hot path.
//
// The count walks seq windows up from read_seq: each window is a range of the events
// primary key (conv_id, seq) and of events_target (conv_id, target_seq), and the walk stops
// once it has counted UNREAD_COUNT_MAX. Ranges, not a LIMIT, are what bound the work:
// "ORDER BY seq LIMIT n" leaves the plan to the row estimates, and PostgreSQL, estimating
// few unread rows, chose a bitmap scan that read every event above read_seq before the
// LIMIT saw one, and a delete probe that read every delete of the conversation. Inside a
// window any plan reads only that window's rows, and EXCEPT (a hashed or sorted set
// operation, never a nested loop) takes the deleted texts out in linear time.
import { UNREAD_COUNT_MAX } from '../../schemas/index.js'
import type { Queryable } from '../store.js'

/**
 * Smallest window (seqs). Each window spans the unread still to count, so a run of
 * events that don't count (own messages, reactions, edits, deletes) is crossed in few
 * steps of at least this many seqs, not one seq at a time.
 */
const MIN_WINDOW = 100

/**
 * SQL expression: how many events are unread for `user` over the conversations of `todo`,
 * at most UNREAD_COUNT_MAX. `todo` is a query of one row of three parallel arrays: conv
 * (uuid[]), rd (the read_seq of each, bigint[]) and last (its last_seq, bigint[]). The walk
 * goes through them in array order, a window at a time, and stops at the cap.
 */
function unreadWalk (todo: string, user: string): string {
  return `(WITH RECURSIVE todo AS (${todo}),
  walk (i, hi, n) AS (
    SELECT 1, t.rd[1], 0 FROM todo t WHERE cardinality(t.conv) > 0
    UNION ALL
    SELECT CASE WHEN x.top < t.last[w.i] THEN w.i ELSE w.i + 1 END,
           CASE WHEN x.top < t.last[w.i] THEN x.top ELSE t.rd[w.i + 1] END,
           w.n + (SELECT count(*) FROM (
             SELECT u.seq FROM events u
             WHERE u.conv_id = t.conv[w.i] AND u.seq > w.hi AND u.seq <= x.top AND u.type = 'text' AND u.sender_id <> ${user}
             EXCEPT
             SELECT d.target_seq FROM events d
             WHERE d.conv_id = t.conv[w.i] AND d.target_seq > w.hi AND d.target_seq <= x.top AND d.type = 'delete'
           ) unread)::int
    FROM walk w CROSS JOIN todo t
      CROSS JOIN LATERAL (SELECT least(w.hi + greatest(${UNREAD_COUNT_MAX} - w.n, ${MIN_WINDOW}), t.last[w.i]) AS top) x
    WHERE w.n < ${UNREAD_COUNT_MAX} AND w.i <= cardinality(t.conv)
  )
  SELECT least(coalesce(max(n), 0), ${UNREAD_COUNT_MAX}) FROM walk)`
}

/**
 * SQL expression: the unread count of the member row `m` (an alias with conv_id, user_id,
 * read_seq and its conversation's last_seq), at most UNREAD_COUNT_MAX.
 */
export function unreadCount (m: string): string {
  return unreadWalk(`SELECT ARRAY[${m}.conv_id] AS conv, ARRAY[${m}.read_seq] AS rd, ARRAY[${m}.last_seq] AS last WHERE ${m}.last_seq > ${m}.read_seq`,
    `${m}.user_id`)
}

/**
 * Each user's unread messages over all their conversations, at most UNREAD_COUNT_MAX (the
 * walk stops there, however many conversations are left): one query for all of them.
 */
export async function totalUnread (q: Queryable, userIds: readonly string[]): Promise<Map<string, number>> {
  const totals = new Map<string, number>(userIds.map(u => [u, 0]))
  if (userIds.length === 0) return totals
  const rows = await q.query<{ user_id: string, unread: number }>(
    `SELECT r.user_id, ${unreadWalk(
      `SELECT array_agg(m.conv_id ORDER BY m.conv_id) AS conv, array_agg(m.read_seq ORDER BY m.conv_id) AS rd,
              array_agg(c.last_seq ORDER BY m.conv_id) AS last
       FROM members m JOIN conversations c ON c.id = m.conv_id
       WHERE m.user_id = r.user_id AND c.last_seq > m.read_seq`, 'r.user_id')} AS unread
     FROM unnest($1::text[]) AS r (user_id)`, [userIds])
  for (const r of rows) totals.set(r.user_id, r.unread)
  return totals
}
