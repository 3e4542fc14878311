// Conversations made straight in the store, as the REST routes make them, for tests
// that exercise the broker side.
import { randomUUID } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { connectUser, startNode, type NodeOptions } from './node.js'

export async function createConversation (node: Threadline, members: readonly string[], type: 'direct' | 'group' = members.length === 2 ? 'direct' : 'group'): Promise<string> {
  const id = randomUUID()
  const creator = members[0] as string
  await node.store.transaction(async (tx) => {
    await tx.query('INSERT INTO users (id, display_name) SELECT u, u FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING', [members])
    await tx.query('INSERT INTO conversations (id, type, title, created_by, direct_key) VALUES ($1, $2, $3, $4, $5)',
      [id, type, type === 'group' ? 'test group' : null, creator, type === 'direct' ? [...members].sort().join('|') : null])
    await tx.query('INSERT INTO members (conv_id, user_id, role) SELECT $1, u, CASE WHEN u = $2 THEN \'admin\' ELSE \'member\' END FROM unnest($3::text[]) AS u',
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

interface Teardownable { teardown(fn: () => unknown): void }

export interface DirectChat {
  node: Threadline
  alice: string
  bob: string
  conv: string
  /** alice's phone */
  a: MqttClient
  /** bob's phone, subscribed to bob's inbox */
  b: MqttClient
}

/** A node with alice and bob in one direct conversation, each on a phone. */
export async function startDirectChat (t: Teardownable, opts: NodeOptions = {}): Promise<DirectChat> {
  const node = await startNode(t, opts)
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  const b = await connectUser(t, node, bob, 'phone')
  await b.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  return { node, alice, bob, conv, a, b }
}
