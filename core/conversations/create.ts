// Creating conversations (DESIGN.md §6 POST /v1/conversations): a direct conversation
// is one per pair, so creating it again answers the same one; a group's creator is its
// first admin. Users named as members get a row if they have none yet.
import { randomUUID } from 'node:crypto'
import { ThreadlineError, type Conversation, type CreateConversationBody } from '../../schemas/index.js'
import { logMembershipChange } from '../membership/change-log.js'
import { notifyMembership, type ErrorLog, type NotifyDeps } from '../membership/notify.js'
import type { Store } from '../store.js'
import { ensureUsers } from '../users.js'
import { directKey, insertDirect, insertGroup, insertMembers, loadConversation } from './repo.js'

export interface ConversationDeps extends NotifyDeps {
  readonly store: Store
  readonly config: { readonly maxGroupMembers: number }
}

export interface Created { created: boolean, conversation: Conversation }

export async function createConversation (deps: ConversationDeps, log: ErrorLog, creator: string, body: CreateConversationBody): Promise<Created> {
  return body.type === 'direct'
    ? await createDirect(deps, log, creator, body)
    : await createGroup(deps, log, creator, body)
}

async function createDirect (deps: ConversationDeps, log: ErrorLog, creator: string, body: CreateConversationBody): Promise<Created> {
  if (body.title !== undefined) throw new ThreadlineError('bad_request', 'body.title: direct conversations have no title')
  // naming yourself along with the other user is harmless; only the other one counts
  const others = [...new Set(body.members)].filter(u => u !== creator)
  if (others.length === 0) throw new ThreadlineError('bad_request', 'body.members: a direct conversation needs another user than yourself')
  if (others.length > 1) throw new ThreadlineError('bad_request', 'body.members: a direct conversation has exactly one other member; create a group for more')
  const other = others[0] as string
  const result = await deps.store.transaction(async (tx) => {
    await ensureUsers(tx, [other])
    const { id, created } = await insertDirect(tx, randomUUID(), creator, directKey(creator, other))
    let logId: number | null = null
    if (created) {
      const added = await insertMembers(tx, id, [{ userId: creator, role: 'member' }, { userId: other, role: 'member' }])
      logId = await logMembershipChange(tx, id, 'added', added)
    }
    return { created, conversation: await loadConversation(tx, id) as Conversation, logId }
  })
  if (result.created) await announceAll(deps, log, result.conversation, result.logId)
  return { created: result.created, conversation: result.conversation }
}

async function createGroup (deps: ConversationDeps, log: ErrorLog, creator: string, body: CreateConversationBody): Promise<Created> {
  const title = body.title?.trim() ?? ''
  if (title === '') throw new ThreadlineError('bad_request', 'body.title is required for a group and must not be blank')
  const others = [...new Set(body.members)].filter(u => u !== creator)
  const max = deps.config.maxGroupMembers
  if (others.length + 1 > max) throw new ThreadlineError('too_large', `body.members: a group has at most ${max} members, the creator included`)
  const id = randomUUID()
  const { conversation, logId } = await deps.store.transaction(async (tx) => {
    await ensureUsers(tx, others)
    await insertGroup(tx, id, creator, title)
    const added = await insertMembers(tx, id, [{ userId: creator, role: 'admin' }, ...others.map(u => ({ userId: u, role: 'member' as const }))])
    const logId = await logMembershipChange(tx, id, 'added', added)
    return { conversation: await loadConversation(tx, id) as Conversation, logId }
  })
  await announceAll(deps, log, conversation, logId)
  return { created: true, conversation }
}

async function announceAll (deps: ConversationDeps, log: ErrorLog, conversation: Conversation, logId: number | null): Promise<void> {
  const everyone = conversation.members.map(m => m.user_id)
  await notifyMembership(deps, log, { convId: conversation.id, change: 'added', userIds: everyone, logId, recipients: everyone })
}
