// The membership change log (table membership_changes): every change to `members` is
// also written here, in the transaction that makes it, so a node learns each committed
// change from the store even when its announcement on the cluster channel never
// arrives (Redis pub/sub delivers at most once; a node killed between commit and
// announcement sends none). The broker's membership cache reads it
// (broker/membership-catchup.ts); writers call
// logMembershipChange inside their transaction.
import type { Queryable } from '../store.js'
import { SYNC_STAMP } from '../sync/stamp.js'

export type ChangeKind = 'added' | 'removed'

export interface LoggedChange {
  id: number
  conv_id: string
  change: ChangeKind
  user_ids: string[]
}

/**
 * Records a change; call it inside the transaction that changes `members`, after the
 * conversation's row lock is taken (or the conversation is created), so that the log ids
 * of one conversation follow its commit order. Answers the id, null when nobody changed.
 * In the same statement GET /v1/sync learns it (core/sync/stamp.ts): the conversation's
 * member list changed, and each removed user gets a removal to be told about.
 */
export async function logMembershipChange (tx: Queryable, convId: string, change: ChangeKind, userIds: readonly string[]): Promise<number | null> {
  if (userIds.length === 0) return null
  const rows = await tx.query<{ id: number }>(
    `WITH logged AS (
       INSERT INTO membership_changes (conv_id, change, user_ids) VALUES ($1, $2, $3::text[]) RETURNING id
     ), stamped AS (
       UPDATE conversations SET ${SYNC_STAMP} WHERE id = $1
     ), removals AS (
       INSERT INTO member_removals (user_id, conv_id) SELECT u, $1 FROM unnest($3::text[]) AS u WHERE $2 = 'removed'
       ON CONFLICT (user_id, conv_id) DO UPDATE SET sync_xid = EXCLUDED.sync_xid, removed_at = EXCLUDED.removed_at
     )
     SELECT id FROM logged`,
    [convId, change, [...userIds]])
  return rows[0]?.id ?? null
}

/** Rows above `after` and the rows of `gaps`, in id order, at most `limit`. */
export async function readChanges (q: Queryable, after: number, gaps: readonly number[], limit: number): Promise<LoggedChange[]> {
  return await q.query<LoggedChange>(
    `SELECT id, conv_id::text AS conv_id, change, user_ids FROM membership_changes
     WHERE id > $1 OR id = ANY($2::bigint[]) ORDER BY id LIMIT $3`, [after, [...gaps], limit])
}

/**
 * Where a node that starts (or has lost track) begins reading: after the last row older
 * than `recentS`. Younger rows are read again (applying a row twice is harmless), which
 * covers transactions that took a lower id and were still in flight.
 */
export async function logStart (q: Queryable, recentS: number): Promise<number> {
  const rows = await q.query<{ id: number | null }>(
    'SELECT max(id) AS id FROM membership_changes WHERE created_at < now() - make_interval(secs => $1)', [recentS])
  return rows[0]?.id ?? 0
}

/** Deletes rows older than `retentionS`; answers how many. */
export async function pruneChanges (q: Queryable, retentionS: number): Promise<number> {
  const rows = await q.query<{ n: number }>(
    `WITH gone AS (DELETE FROM membership_changes WHERE created_at < now() - make_interval(secs => $1) RETURNING 1)
     SELECT count(*)::int AS n FROM gone`, [retentionS])
  return rows[0]?.n ?? 0
}
