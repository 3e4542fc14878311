// Conversations made straight in the store, as the REST routes make them, for tests
// that exercise the broker side.
import { randomUUID } from 'node:crypto'
import type { Threadline } from '../../broker/server.js'

export async function createConversation (node: Threadline, members: readonly string[], type: 'direct' | 'group' = members.length === 2 ? 'direct' : 'group'): Promise<string> {
  const id = randomUUID()
  const creator = members[0] as string
  await node.store.transaction(async (tx) => {
    await tx.query(`INSERT INTO users (id, display_name) SELECT u, u FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING`, [members])
    await tx.query(`INSERT INTO conversations (id, type, title, created_by, direct_key) VALUES ($1, $2, $3, $4, $5)`,
      [id, type, type === 'group' ? 'test group' : null, creator, type === 'direct' ? [...members].sort().join('|') : null])
    await tx.query(`INSERT INTO members (conv_id, user_id, role) SELECT $1, u, CASE WHEN u = $2 THEN 'admin' ELSE 'member' END FROM unnest($3::text[]) AS u`,
      [id, creator, members])
  })
  await node.membership.announce({ conv_id: id, added: [...members], removed: [] })
  return id
}

/** A unique user id per call, so parallel test files never share inboxes on one Redis. */
export function userId (name: string): string {
  return `${name}-${randomUUID().slice(0, 8)}`
}

export const text = (clientMsgId: string, body: string): string => JSON.stringify({ client_msg_id: clientMsgId, type: 'text', text: body })
