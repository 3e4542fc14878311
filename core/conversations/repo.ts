// conversations and their member lists (DESIGN.md §5).
import type { Conversation, Member } from '../../schemas/index.js'
import { iso } from '../iso.js'
import type { Queryable } from '../store.js'

export interface ConversationRow {
  id: string
  type: Conversation['type']
  title: string | null
  last_seq: number
  created_at: Date | string
}

/** 'a|b' with a < b: the unique key that makes a pair's direct conversation one row. */
export const directKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`)

const CONVERSATION_COLUMNS = 'c.id::text AS id, c.type, c.title, c.last_seq, c.created_at'

/**
 * The pair's direct conversation, inserted unless it exists. Under concurrency PostgreSQL's
 * ON CONFLICT waits for the other transaction's insert and then does nothing; the SELECT
 * that follows (a new snapshot under READ COMMITTED) sees the winner's row.
 */
export async function insertDirect (tx: Queryable, id: string, createdBy: string, key: string): Promise<{ id: string, created: boolean }> {
  const inserted = await tx.query<{ id: string }>(
    `INSERT INTO conversations (id, type, created_by, direct_key) VALUES ($1, 'direct', $2, $3)
     ON CONFLICT (direct_key) DO NOTHING RETURNING id::text AS id`, [id, createdBy, key])
  if (inserted[0]) return { id: inserted[0].id, created: true }
  const existing = await tx.query<{ id: string }>('SELECT id::text AS id FROM conversations WHERE direct_key = $1', [key])
  if (!existing[0]) throw new Error(`direct conversation ${key} vanished during creation`)
  return { id: existing[0].id, created: false }
}

export async function insertGroup (tx: Queryable, id: string, createdBy: string, title: string): Promise<void> {
  await tx.query('INSERT INTO conversations (id, type, title, created_by) VALUES ($1, \'group\', $2, $3)', [id, title, createdBy])
}

/** Inserts the members not already in; answers the user ids actually added. */
export async function insertMembers (tx: Queryable, convId: string, members: ReadonlyArray<{ userId: string, role: Member['role'] }>): Promise<string[]> {
  if (members.length === 0) return []
  const rows = await tx.query<{ user_id: string }>(
    `INSERT INTO members (conv_id, user_id, role)
     SELECT $1, u, r FROM unnest($2::text[], $3::text[]) AS x(u, r)
     ON CONFLICT (conv_id, user_id) DO NOTHING RETURNING user_id`,
    [convId, members.map(m => m.userId), members.map(m => m.role)])
  return rows.map(r => r.user_id)
}

/** Members of each conversation, oldest first. */
export async function membersOf (q: Queryable, convIds: readonly string[]): Promise<Map<string, Member[]>> {
  const byConv = new Map<string, Member[]>(convIds.map(id => [id, []]))
  if (convIds.length === 0) return byConv
  const rows = await q.query<{ conv_id: string, user_id: string, role: Member['role'], display_name: string }>(
    `SELECT m.conv_id::text AS conv_id, m.user_id, m.role, u.display_name
     FROM members m JOIN users u ON u.id = m.user_id
     WHERE m.conv_id = ANY($1::uuid[]) ORDER BY m.joined_at, m.user_id`, [convIds])
  for (const r of rows) byConv.get(r.conv_id)?.push({ user_id: r.user_id, role: r.role, display_name: r.display_name })
  return byConv
}

export function toConversation (row: ConversationRow, members: Member[]): Conversation {
  return { id: row.id, type: row.type, title: row.title, members, last_seq: row.last_seq, created_at: iso(row.created_at) }
}

export async function loadConversation (q: Queryable, convId: string): Promise<Conversation | null> {
  const rows = await q.query<ConversationRow>(`SELECT ${CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = $1`, [convId])
  const row = rows[0]
  if (!row) return null
  return toConversation(row, (await membersOf(q, [convId])).get(convId) ?? [])
}

/**
 * Locks the conversation row (the send path locks it too, so membership changes and
 * sends of one conversation serialise) and answers it with the caller's role, or null
 * when the caller is not a member or the conversation does not exist.
 */
export async function lockAsMember (tx: Queryable, convId: string, userId: string): Promise<{ type: Conversation['type'], role: Member['role'] } | null> {
  const rows = await tx.query<{ type: Conversation['type'], role: Member['role'] | null }>(
    `SELECT c.type, m.role FROM conversations c
     LEFT JOIN members m ON m.conv_id = c.id AND m.user_id = $2
     WHERE c.id = $1 FOR UPDATE OF c`, [convId, userId])
  const row = rows[0]
  return row && row.role !== null ? { type: row.type, role: row.role } : null
}
