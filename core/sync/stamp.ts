// How a change becomes visible to GET /v1/sync. A row of `conversations` or `members`
// carries `sync_xid`, the id of the transaction that last changed what a sync reports
// about it; a sync cursor is the oldest transaction still running when the previous
// sync read (cursor.ts), so a row changed by a transaction that took its id early and
// committed late is still ahead of every cursor handed out before that commit.
//
// Who stamps what:
// - new rows of both tables: the column default;
// - members' markers and mute (delivered_seq, read_seq, muted_until): the trigger
//   members_sync_stamp, whenever an UPDATE changes one of them. A marker write needs
//   nothing else: `UPDATE members SET read_seq = GREATEST(read_seq, $n) …` is seen;
// - conversations' title: the trigger conversations_sync_stamp;
// - a new event: the function threadline_commit_sends (broker/store/migrations.ts) sets
//   sync_xid in the UPDATE of conversations it makes; a membership change
//   (core/membership/change-log.ts): SYNC_STAMP in its UPDATE of conversations.
// Any other change a sync should report must set SYNC_STAMP in the same transaction.

/** The SET item that marks a row of `conversations` (or `members`) as changed. */
export const SYNC_STAMP = 'sync_xid = pg_current_xact_id()'
