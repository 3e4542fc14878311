// users rows (DESIGN.md §5): created the first time a user is seen, by their own token
// (over MQTT or HTTP alike) or as a member named by someone else. A token's name wins
// over the id-as-name placeholder.
import type { Me, UserSettings, UserSettingsBody } from '../schemas/index.js'
import type { Queryable } from './store.js'

export async function upsertTokenUser (q: Queryable, userId: string, name: string | null): Promise<void> {
  await q.query(
    `INSERT INTO users (id, display_name) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name
     WHERE $3 AND users.display_name IS DISTINCT FROM EXCLUDED.display_name`,
    [userId, name ?? userId, name !== null])
}

/** Rows for users named as members, leaving existing ones untouched. */
export async function ensureUsers (q: Queryable, userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return
  // Each new row holds its key's lock until commit, and a concurrent insert of the same id
  // waits for it: two transactions inserting {a, b} and {b, a} in request order deadlock.
  // One global order (sorted, by code unit like ORDER BY ... COLLATE "C") makes them queue.
  const sorted = [...new Set(userIds)].sort()
  await q.query(
    `INSERT INTO users (id, display_name)
     SELECT u, u FROM unnest($1::text[]) WITH ORDINALITY AS x(u, i) ORDER BY i
     ON CONFLICT (id) DO NOTHING`, [sorted])
}

export async function findMe (q: Queryable, userId: string): Promise<Me | null> {
  const rows = await q.query<{ id: string, display_name: string, presence_visibility: UserSettings['presence_visibility'] }>(
    'SELECT id, display_name, presence_visibility FROM users WHERE id = $1', [userId])
  const row = rows[0]
  return row ? { user_id: row.id, display_name: row.display_name, settings: { presence_visibility: row.presence_visibility } } : null
}

/** Changes what `patch` names; the settings after it, or null when the user has no row. */
export async function updateSettings (q: Queryable, userId: string, patch: UserSettingsBody): Promise<UserSettings | null> {
  const rows = await q.query<UserSettings>(
    'UPDATE users SET presence_visibility = COALESCE($2, presence_visibility) WHERE id = $1 RETURNING presence_visibility',
    [userId, patch.presence_visibility ?? null])
  return rows[0] ?? null
}
