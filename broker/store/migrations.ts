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
  `),
  // One group-commit batch in one statement (core/messages/event-store.ts says what it
  // decides and why). One statement: no BEGIN/COMMIT round trips, and PL/pgSQL keeps its
  // queries' plans.
  [`
  CREATE FUNCTION threadline_commit_sends(p_items jsonb)
  RETURNS TABLE (o_i int, o_code int, o_seq bigint, o_ref int, o_type text, o_body jsonb, o_target_seq bigint,
                 o_created_at timestamptz, o_members text[])
  LANGUAGE plpgsql
  -- a custom plan per call would plan these statements anew at every batch; the generic
  -- ones use the indexes for any batch size
  SET plan_cache_mode = force_generic_plan
  AS $fn$
  #variable_conflict use_column
  DECLARE
    n int := jsonb_array_length(p_items);
    cids uuid[];      -- the batch's known conversations, sorted: the lock order
    clast bigint[];   -- per conversation: last_seq, advanced as sends are stored
    clast0 bigint[];  -- per conversation: last_seq when locked
    ci int[];         -- per item: index of its conversation in cids, 0 when unknown
    mem boolean[];    -- per item: the sender is a member
    ex events[];      -- per item: the already stored event with its idempotency key, if any
    first int[];      -- per item: the first item of the batch with its idempotency key
    kind int[];       -- per item: 0 text, 1 reaction, 2 edit, 3 delete
    reply bigint[];   -- per item: reply_to, 0 if none
    tstate int[];     -- per aimed item: 1 no such text message, 2 deleted, 3 someone else's, 4 the sender's own
    tfirst int[];     -- per aimed item: the first item of the batch aimed at the same message
    stored_as int[];  -- per first item of a key: the item that stored it, 0 if none yet
    tdel boolean[];   -- per first item aimed at a message: a delete of it was stored in this batch
    code int[];       -- per item: 1 stored, 2 stored earlier, 3 same as item ref, 4 not a member, 5 reply_to missing,
                      --           6 target missing or not a text message, 7 target deleted, 8 not the target's sender
    sq bigint[];      -- per item: its new seq (code 1) or the item it repeats (code 3)
    c int;
    i int;
  BEGIN
    IF n = 0 THEN RETURN; END IF;
    SELECT coalesce(array_agg(l.id ORDER BY l.id), '{}'), coalesce(array_agg(l.last_seq ORDER BY l.id), '{}')
      INTO cids, clast
      FROM (SELECT cv.id, cv.last_seq FROM conversations cv
            WHERE cv.id IN (SELECT (x->>'c')::uuid FROM jsonb_array_elements(p_items) x)
            ORDER BY cv.id FOR UPDATE) l;
    clast0 := clast;
    -- read after the lock: a statement's snapshot is taken when it starts, so whatever the
    -- previous holder of a lock committed (another node's batch) is seen here
    SELECT array_agg(q.ci ORDER BY q.i), array_agg(q.mem ORDER BY q.i), array_agg(q.ex ORDER BY q.i),
           array_agg(q.first ORDER BY q.i), array_agg(q.kind ORDER BY q.i), array_agg(q.reply ORDER BY q.i),
           array_agg(q.tstate ORDER BY q.i), array_agg(q.tfirst ORDER BY q.i)
      INTO ci, mem, ex, first, kind, reply, tstate, tfirst
      FROM (
        SELECT x.i, coalesce(array_position(cids, x.c), 0) AS ci,
               EXISTS (SELECT 1 FROM members m WHERE m.conv_id = x.c AND m.user_id = x.s) AS mem,
               (SELECT e FROM events e WHERE e.conv_id = x.c AND e.sender_id = x.s AND e.client_msg_id = x.m) AS ex,
               min(x.i) OVER (PARTITION BY x.c, x.s, x.m) AS first,
               CASE x.t WHEN 'text' THEN 0 WHEN 'reaction' THEN 1 WHEN 'edit' THEN 2 ELSE 3 END AS kind,
               coalesce(x.r, 0) AS reply,
               CASE WHEN x.t = 'text' THEN 0 ELSE coalesce((
                 SELECT CASE WHEN t.type <> 'text' THEN 1
                             WHEN EXISTS (SELECT 1 FROM events d WHERE d.conv_id = t.conv_id AND d.target_seq = t.seq AND d.type = 'delete') THEN 2
                             WHEN t.sender_id <> x.s THEN 3 ELSE 4 END
                 FROM events t WHERE t.conv_id = x.c AND t.seq = x.g), 1) END AS tstate,
               min(x.i) OVER (PARTITION BY x.c, x.g) AS tfirst
        FROM jsonb_to_recordset(p_items) AS x(i int, c uuid, s text, m text, t text, g bigint, r bigint)
      ) q;
    stored_as := array_fill(0, ARRAY[n]);
    tdel := array_fill(false, ARRAY[n]);
    code := array_fill(0, ARRAY[n]);
    sq := array_fill(0::bigint, ARRAY[n]);
    FOR i IN 1..n LOOP
      c := ci[i];
      IF (ex[i]).seq IS NOT NULL THEN
        code[i] := 2;
      ELSIF stored_as[first[i]] > 0 THEN
        code[i] := 3;
        sq[i] := stored_as[first[i]];
      ELSIF c = 0 OR NOT mem[i] THEN
        code[i] := 4;
      ELSIF kind[i] = 0 AND reply[i] > clast[c] THEN
        code[i] := 5;
      ELSIF kind[i] > 0 AND tstate[i] = 1 THEN
        code[i] := 6;
      ELSIF kind[i] > 0 AND (tstate[i] = 2 OR tdel[tfirst[i]]) THEN
        code[i] := 7;
      ELSIF kind[i] >= 2 AND tstate[i] = 3 THEN
        code[i] := 8;
      ELSE
        clast[c] := clast[c] + 1;
        code[i] := 1;
        sq[i] := clast[c];
        stored_as[first[i]] := i;
        IF kind[i] = 3 THEN tdel[tfirst[i]] := true; END IF;
      END IF;
    END LOOP;
    UPDATE conversations cv SET last_seq = v.l, last_event_at = now(), sync_xid = pg_current_xact_id()
      FROM unnest(cids, clast, clast0) AS v(id, l, l0) WHERE cv.id = v.id AND v.l > v.l0;
    INSERT INTO events (conv_id, seq, sender_id, client_msg_id, type, body, target_seq)
      SELECT x.c, sq[x.i], x.s, x.m, x.t, x.b, x.g
      FROM jsonb_to_recordset(p_items) AS x(i int, c uuid, s text, m text, t text, b jsonb, g bigint)
      WHERE code[x.i] = 1;
    -- the members (the fan-out list, consistent with this commit) once per conversation:
    -- on its first stored item
    -- (no join with events here: planned generically, it would hash the whole table)
    RETURN QUERY
      SELECT x.i, code[x.i],
             CASE code[x.i] WHEN 1 THEN sq[x.i] WHEN 2 THEN (ex[x.i]).seq END,
             CASE code[x.i] WHEN 3 THEN sq[x.i]::int END,
             CASE code[x.i] WHEN 2 THEN (ex[x.i]).type END,
             CASE code[x.i] WHEN 2 THEN (ex[x.i]).body END,
             CASE code[x.i] WHEN 2 THEN (ex[x.i]).target_seq END,
             CASE code[x.i] WHEN 1 THEN now() WHEN 2 THEN (ex[x.i]).created_at END,
             CASE WHEN code[x.i] = 1 AND sq[x.i] = clast0[ci[x.i]] + 1
                  THEN ARRAY(SELECT m.user_id FROM members m WHERE m.conv_id = x.c) END
      FROM jsonb_to_recordset(p_items) AS x(i int, c uuid)
      ORDER BY x.i;
  END
  $fn$`],
  // No query reads conversations_last_event_at (a member's list sorts their own
  // conversations, found through members), yet every batch that moves last_event_at paid
  // an entry in it, and an indexed column changing makes every UPDATE of the row a
  // non-HOT one: new entries in the primary key and direct_key indexes too. Without it
  // the send path's UPDATE of conversations changes no indexed column.
  statements(`
  DROP INDEX conversations_last_event_at
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
