// Schema of DESIGN.md §5. Migrations run at every startup: each is applied once, in
// order, inside one transaction that holds an advisory lock, so two nodes starting at
// the same time against one PostgreSQL do not race. Append new migrations; never edit
// an applied one.
import type { Store } from '../../core/store.js'

export const migrations: ReadonlyArray<readonly string[]> = [
  statements(`
  CREATE TABLE users (
    id text PRIMARY KEY,
    display_name text NOT NULL,
    presence_visibility text NOT NULL DEFAULT 'everyone'
      CHECK (presence_visibility IN ('everyone', 'contacts', 'nobody')),
    last_seen timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE conversations (
    id uuid PRIMARY KEY,
    type text NOT NULL CHECK (type IN ('direct', 'group')),
    title text,
    created_by text NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seq bigint NOT NULL DEFAULT 0,
    last_event_at timestamptz NOT NULL DEFAULT now(),
    -- 'a|b' with a < b for direct conversations: one direct conversation per pair
    direct_key text UNIQUE
  );
  CREATE INDEX conversations_last_event_at ON conversations (last_event_at DESC, id);
  CREATE TABLE members (
    conv_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id),
    role text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
    joined_at timestamptz NOT NULL DEFAULT now(),
    delivered_seq bigint NOT NULL DEFAULT 0,
    read_seq bigint NOT NULL DEFAULT 0,
    muted_until timestamptz,
    PRIMARY KEY (conv_id, user_id)
  );
  CREATE INDEX members_user_id ON members (user_id);
  CREATE TABLE events (
    conv_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    sender_id text NOT NULL,
    client_msg_id text NOT NULL,
    type text NOT NULL CHECK (type IN ('text', 'reaction', 'edit', 'delete')),
    body jsonb NOT NULL DEFAULT '{}'::jsonb,
    target_seq bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conv_id, seq),
    UNIQUE (conv_id, sender_id, client_msg_id)
  );
  CREATE INDEX events_target ON events (conv_id, target_seq) WHERE target_seq IS NOT NULL;
  CREATE TABLE devices (
    user_id text NOT NULL REFERENCES users (id),
    device_id text NOT NULL,
    platform text NOT NULL CHECK (platform IN ('ios', 'android', 'web')),
    push_token text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, device_id)
  );
  `),
  // Membership changes, written in the transaction that makes them, so that every node
  // learns each committed change even when its announcement is lost (broker/membership.ts).
  // No foreign key: the log outlives nothing and is pruned by age.
  statements(`
  CREATE TABLE membership_changes (
    id bigserial PRIMARY KEY,
    conv_id uuid NOT NULL,
    change text NOT NULL CHECK (change IN ('added', 'removed')),
    user_ids text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE INDEX membership_changes_created_at ON membership_changes (created_at);
  `),
  // GET /v1/sync (core/sync/): every row a sync reports carries the id of the transaction
  // that last changed it (sync_xid), and a sync cursor is the oldest transaction still
  // running when the previous sync read (pg_snapshot_xmin), so a transaction that commits
  // late is never skipped. The columns have no value for rows older than this migration
  // (no table rewrite): NULL means "unchanged since", which no cursor can be older than.
  // Marker and mute writes are stamped by a trigger, so every writer of members (the
  // receipts plugin's coalesced UPDATEs included) is seen without knowing about sync;
  // the send path stamps conversations in the UPDATE it already makes
  // (core/messages/event-store.ts), membership changes in logMembershipChange.
  // member_removals remembers, per user, the conversations they left or were removed
  // from; sync_state holds the epoch that ties cursors to this database and the newest
  // transaction whose removals were pruned (older cursors answer cursor_expired).
  statements(`
  ALTER TABLE conversations ADD COLUMN sync_xid xid8;
  ALTER TABLE conversations ALTER COLUMN sync_xid SET DEFAULT pg_current_xact_id();
  ALTER TABLE members ADD COLUMN sync_xid xid8;
  ALTER TABLE members ALTER COLUMN sync_xid SET DEFAULT pg_current_xact_id();
  CREATE FUNCTION threadline_stamp_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.sync_xid := pg_current_xact_id(); RETURN NEW; END $$;
  CREATE TRIGGER members_sync_stamp BEFORE UPDATE OF delivered_seq, read_seq, muted_until ON members
    FOR EACH ROW WHEN (OLD.delivered_seq IS DISTINCT FROM NEW.delivered_seq OR OLD.read_seq IS DISTINCT FROM NEW.read_seq
      OR OLD.muted_until IS DISTINCT FROM NEW.muted_until)
    EXECUTE FUNCTION threadline_stamp_sync();
  CREATE TRIGGER conversations_sync_stamp BEFORE UPDATE OF title ON conversations
    FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title)
    EXECUTE FUNCTION threadline_stamp_sync();
  CREATE TABLE member_removals (
    user_id text NOT NULL,
    conv_id uuid NOT NULL,
    sync_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    removed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, conv_id)
  );
  CREATE INDEX member_removals_removed_at ON member_removals (removed_at);
  CREATE TABLE sync_state (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    epoch text NOT NULL DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 16),
    pruned_xid xid8 NOT NULL DEFAULT '0'
  );
  INSERT INTO sync_state DEFAULT VALUES
  `),
  // A push token belongs to one device of one user: registered again by someone else (a
  // phone that changed hands), it moves to them; and a token the provider reports gone
  // is found and deleted by its value (plugins/push).
  statements(`
  CREATE UNIQUE INDEX devices_push_token ON devices (push_token)
  `)
]

// one statement per query: PGlite's extended protocol takes no multi-statement strings
function statements (script: string): string[] {
  return script.split(/;\s*\n/).map(s => s.trim()).filter(s => s !== '')
}

// any constant of our own: the lock only has to be the same on every node
const MIGRATION_LOCK_KEY = 7_310_541

export async function migrate (store: Store): Promise<number> {
  return await store.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY])
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`)
    const rows = await tx.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')
    const current = rows[0]?.v ?? 0
    for (let version = current + 1; version <= migrations.length; version++) {
      for (const statement of migrations[version - 1] ?? []) await tx.query(statement)
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version])
    }
    return migrations.length - current
  })
}
