// Who may see whose presence (DESIGN.md §3, §5): `users.presence_visibility` of the
// subject is `everyone`, `contacts` (the viewer shares a conversation with them) or
// `nobody`; a user always sees their own. A user with no row is visible to nobody but
// themself, so an answer never tells whether an id exists. One rule, written once, for
// SUBSCRIBE, the REST route and the re-checks after a setting or membership change.
import type { Queryable } from '../store.js'

/** SQL: whether `viewer` may see the presence of the user row `u` (an expression over both). */
const visibleTo = (viewer: string): string => `(u.id = ${viewer} OR u.presence_visibility = 'everyone' OR (u.presence_visibility = 'contacts' AND EXISTS (
    SELECT 1 FROM members a JOIN members b USING (conv_id) WHERE a.user_id = ${viewer} AND b.user_id = u.id)))`

export interface SubjectRow {
  id: string
  visible: boolean
  last_seen: Date | string | null
}

/** The users among `subjects` that have a row, whether `viewer` may see them, and their stored last_seen. */
export async function subjectsFor (q: Queryable, viewer: string, subjects: readonly string[]): Promise<SubjectRow[]> {
  if (subjects.length === 0) return []
  return await q.query<SubjectRow>(
    `SELECT u.id, ${visibleTo('$1')} AS visible, u.last_seen FROM users u WHERE u.id = ANY($2::text[])`,
    [viewer, subjects])
}

export async function canSee (q: Queryable, viewer: string, subject: string): Promise<boolean> {
  if (viewer === subject) return true
  const rows = await subjectsFor(q, viewer, [subject])
  return rows[0]?.visible ?? false
}

/** Of the (viewer, subject) pairs, the indexes of those still allowed: one query for all. */
export async function visiblePairs (q: Queryable, pairs: ReadonlyArray<readonly [viewer: string, subject: string]>): Promise<Set<number>> {
  if (pairs.length === 0) return new Set()
  const rows = await q.query<{ i: number }>(
    `SELECT (x.i - 1)::int AS i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(v, s, i)
     JOIN users u ON u.id = x.s WHERE ${visibleTo('x.v')}`,
    [pairs.map(p => p[0]), pairs.map(p => p[1])])
  return new Set(rows.map(r => r.i))
}
