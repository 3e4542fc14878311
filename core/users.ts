// users rows (DESIGN.md §5) as identity sees them: created the first time a token is
// seen, over MQTT or HTTP alike; a token's name wins over the id-as-name placeholder.
import type { Queryable } from './store.js'

export async function upsertTokenUser (q: Queryable, userId: string, name: string | null): Promise<void> {
  await q.query(
    `INSERT INTO users (id, display_name) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name
     WHERE $3 AND users.display_name IS DISTINCT FROM EXCLUDED.display_name`,
    [userId, name ?? userId, name !== null])
}
