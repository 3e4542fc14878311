// members rows: who is in a conversation, their role and own settings (DESIGN.md §5).
import type { Queryable } from '../store.js'

export async function memberIds (q: Queryable, convId: string): Promise<string[]> {
  const rows = await q.query<{ user_id: string }>('SELECT user_id FROM members WHERE conv_id = $1 ORDER BY user_id', [convId])
  return rows.map(r => r.user_id)
}

/** Answers whether the user was a member (and now is not). */
export async function deleteMember (tx: Queryable, convId: string, userId: string): Promise<boolean> {
  const rows = await tx.query('DELETE FROM members WHERE conv_id = $1 AND user_id = $2 RETURNING user_id', [convId, userId])
  return rows.length > 0
}

/**
 * A group never stays without an admin while it has members: when the last admin leaves,
 * the longest-standing member takes over.
 */
export async function keepAnAdmin (tx: Queryable, convId: string): Promise<void> {
  await tx.query(
    `UPDATE members SET role = 'admin'
     WHERE conv_id = $1 AND user_id = (
       SELECT user_id FROM members WHERE conv_id = $1 ORDER BY joined_at, user_id LIMIT 1)
     AND NOT EXISTS (SELECT 1 FROM members WHERE conv_id = $1 AND role = 'admin')`, [convId])
}

/** The stored value, or undefined when the user is not a member. */
export async function setMutedUntil (q: Queryable, convId: string, userId: string, mutedUntil: string | null): Promise<Date | string | null | undefined> {
  const rows = await q.query<{ muted_until: Date | string | null }>(
    'UPDATE members SET muted_until = $3 WHERE conv_id = $1 AND user_id = $2 RETURNING muted_until', [convId, userId, mutedUntil])
  return rows[0]?.muted_until
}
