// sync_state and member_removals (GET /v1/sync): the epoch every cursor carries, and
// the removals a sync reports, pruned after a retention. Pruning raises the horizon
// (`pruned_xid`) in the same statement, so a cursor that could have needed a pruned
// removal is answered `cursor_expired` rather than silently missing it.
import type { Queryable } from '../store.js'

/** Creates the state row when it is missing (a database emptied by hand): a new epoch. */
export async function ensureSyncState (q: Queryable): Promise<void> {
  await q.query('INSERT INTO sync_state DEFAULT VALUES ON CONFLICT DO NOTHING')
}

/** Deletes removals older than `retentionS` and raises the horizon over them; answers how many. */
export async function pruneRemovals (q: Queryable, retentionS: number): Promise<number> {
  await ensureSyncState(q)
  const rows = await q.query<{ n: number }>(
    `WITH gone AS (
       DELETE FROM member_removals WHERE removed_at < now() - make_interval(secs => $1) RETURNING sync_xid
     ), raised AS (
       UPDATE sync_state SET pruned_xid = greatest(pruned_xid, (SELECT max(sync_xid) FROM gone))
       WHERE EXISTS (SELECT 1 FROM gone)
     )
     SELECT count(*)::int AS n FROM gone`, [retentionS])
  return rows[0]?.n ?? 0
}
