// GET /v1/sync: the conversations that changed for one user since a cursor, as
// GET /v1/conversations shows them (the same views, so unread counts agree), the
// conversations they left or were removed from, and the cursor to ask with next.
//
// One statement reads its own snapshot, the database's epoch and prune horizon, and the
// page of changed conversation ids, so all of them agree with each other. The views of
// the page are read after it: anything they show that the page's snapshot did not see
// was stamped by a transaction that snapshot did not see, and is reported again next time.
import { ThreadlineError, type ConversationView } from '../../schemas/index.js'
import { conversationViews } from '../conversations/views.js'
import type { Queryable } from '../store.js'
import { cursorSnapshot, encodeSyncCursor, snapshotXip, snapshotXmax, snapshotXmin, type SyncCursor } from './cursor.js'
import { ensureSyncState } from './state.js'

export interface SyncResult {
  conversations: ConversationView[]
  removed: string[]
  cursor: string
  has_more: boolean
}

interface PageRow {
  epoch: string
  pruned: string
  snapshot: string
  conv_id: string | null
  removed: boolean | null
}

// $1 user, $2 and $5 the cursor's snapshot: its xmax (null: everything) and the
// transactions in progress then; a row is new to it when stamped by a transaction at or
// above xmax or by one of those (pg_visible_in_snapshot, which cannot be used itself: a
// pg_snapshot literal ahead of the database fails to parse, and such a cursor must get
// cursor_expired). $3 after (null: from the start), $4 rows.
// Per user it reads their members rows (members_user_id) and one conversation each;
// removals come from their own rows of member_removals.
const PAGE_SQL = `
WITH st AS (
  SELECT epoch, pruned_xid::text AS pruned,
         pg_current_snapshot()::text AS snapshot
  FROM sync_state
), changed AS (
  SELECT m.conv_id, false AS removed
  FROM members m JOIN conversations c ON c.id = m.conv_id
  WHERE m.user_id = $1
    AND ($2::xid8 IS NULL OR m.sync_xid >= $2::xid8 OR m.sync_xid = ANY($5::xid8[])
      OR c.sync_xid >= $2::xid8 OR c.sync_xid = ANY($5::xid8[]))
    AND ($3::uuid IS NULL OR m.conv_id > $3::uuid)
  UNION ALL
  SELECT r.conv_id, true
  FROM member_removals r
  WHERE $2::xid8 IS NOT NULL AND r.user_id = $1 AND (r.sync_xid >= $2::xid8 OR r.sync_xid = ANY($5::xid8[]))
    AND ($3::uuid IS NULL OR r.conv_id > $3::uuid)
    AND NOT EXISTS (SELECT 1 FROM members m WHERE m.conv_id = r.conv_id AND m.user_id = $1)
), page AS (
  SELECT conv_id, removed FROM changed ORDER BY conv_id LIMIT $4
)
SELECT st.epoch, st.pruned, st.snapshot, p.conv_id::text AS conv_id, p.removed
FROM st LEFT JOIN page p ON true
ORDER BY p.conv_id`

const expired = (why: string): ThreadlineError =>
  new ThreadlineError('cursor_expired', `${why}: sync again without a cursor`)

/** Checks a cursor against the database that is to answer it. */
function checkCursor (cursor: SyncCursor, state: PageRow): void {
  if (cursor.epoch !== state.epoch) throw expired('the cursor is from another database or one that was reset')
  const xmax = snapshotXmax(state.snapshot)
  for (const snapshot of [cursor.since, cursor.upto]) {
    if (snapshot !== null && snapshotXmax(snapshot) > xmax) throw expired('the cursor is ahead of this database (restored from a backup?)')
  }
  // removals stamped at or below the horizon may be gone: this cursor needs them
  if (cursor.since !== null && BigInt(state.pruned) >= snapshotXmin(cursor.since)) {
    throw expired('the cursor is older than the removals this server keeps')
  }
}

async function readPage (q: Queryable, userId: string, cursor: SyncCursor | null, rows: number): Promise<PageRow[]> {
  const since = cursor?.since ?? null
  const params = [userId, since === null ? null : String(snapshotXmax(since)), cursor?.after ?? null, rows, since === null ? [] : snapshotXip(since)]
  const result = await q.query<PageRow>(PAGE_SQL, params)
  if (result.length > 0) return result
  // no sync_state row: a database emptied by hand; a new epoch expires every old cursor
  await ensureSyncState(q)
  return await q.query<PageRow>(PAGE_SQL, params)
}

/**
 * One page of `userId`'s changes since `cursor` (null: a full sync), at most `limit`
 * entries of conversations and removals together, in ascending conversation id.
 */
export async function syncPage (q: Queryable, userId: string, cursor: SyncCursor | null, limit: number): Promise<SyncResult> {
  const rows = await readPage(q, userId, cursor, limit + 1)
  const state = rows[0] as PageRow
  if (cursor !== null) checkCursor(cursor, state)
  const entries = rows.filter(r => r.conv_id !== null) as Array<PageRow & { conv_id: string, removed: boolean }>
  const page = entries.slice(0, limit)
  const hasMore = entries.length > limit

  const present = page.filter(e => !e.removed).map(e => e.conv_id)
  const views = present.length === 0
    ? []
    : await conversationViews(q, userId, { convIds: present, limit: present.length })
  const byId = new Map(views.map(v => [v.view.id, v.view]))
  const since = cursor?.since ?? null
  // a finished sync hands out the snapshot of its first page (read now, or kept in the cursor)
  const upto = cursor?.upto ?? cursorSnapshot(state.snapshot)
  const last = page.at(-1)
  const next: SyncCursor = hasMore && last !== undefined
    ? { epoch: state.epoch, since, upto, after: last.conv_id }
    : { epoch: state.epoch, since: upto, upto: null, after: null }
  return {
    // a conversation left between the page and its views is reported next time
    conversations: present.flatMap(id => byId.get(id) ?? []),
    removed: page.filter(e => e.removed).map(e => e.conv_id),
    cursor: encodeSyncCursor(next),
    has_more: hasMore
  }
}
