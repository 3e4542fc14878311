// What "nothing was stored" means in a test: every table's rows, each with its xmin (the
// transaction that wrote that row version), hashed. An INSERT, a DELETE or an UPDATE —
// even one that writes the same values again — changes the fingerprint.
import type { Queryable } from '../../core/store.js'

export async function dbFingerprint (q: Queryable): Promise<Record<string, string>> {
  const tables = await q.query<{ name: string }>(
    `SELECT quote_ident(tablename) AS name FROM pg_tables
     WHERE schemaname = current_schema() ORDER BY tablename`)
  const out: Record<string, string> = {}
  for (const { name } of tables) {
    const [row] = await q.query<{ n: number, digest: string | null }>(
      `SELECT count(*)::int AS n, md5(string_agg(t.xmin::text || ':' || t::text, '|' ORDER BY t::text)) AS digest FROM ${name} t`)
    out[name] = `${row?.n ?? 0}:${row?.digest ?? ''}`
  }
  return out
}
