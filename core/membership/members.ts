// Changing who is in a group (DESIGN.md §6): admins add and remove, anyone may leave.
// Each change runs under the conversation's row lock, so the member cap holds against
// concurrent additions, no send slips between the change and its announcement, and the
// change log's ids of one conversation follow its commit order (change-log.ts).
import { ThreadlineError, type Conversation, type Member } from '../../schemas/index.js'
import type { ConversationDeps } from '../conversations/create.js'
import { insertMembers, loadConversation, lockAsMember } from '../conversations/repo.js'
import type { Queryable } from '../store.js'
import { ensureUsers } from '../users.js'
import { logMembershipChange } from './change-log.js'
import { notifyMembership, type ErrorLog } from './notify.js'
import { deleteMember, keepAnAdmin, memberIds } from './repo.js'

async function lockGroup (tx: Queryable, convId: string, userId: string, action: string): Promise<Member['role']> {
  const me = await lockAsMember(tx, convId, userId)
  // an unknown conversation answers like one you are not in: no existence oracle
  if (me === null) throw new ThreadlineError('not_member', `you are not a member of conversation ${convId}`)
  if (me.type === 'direct') throw new ThreadlineError('bad_request', `a direct conversation has fixed members: you cannot ${action}`)
  return me.role
}

export async function addMembers (deps: ConversationDeps, log: ErrorLog, userId: string, convId: string, userIds: readonly string[]): Promise<Conversation> {
  const { conversation, added, logId } = await deps.store.transaction(async (tx) => {
    const role = await lockGroup(tx, convId, userId, 'add members')
    if (role !== 'admin') throw new ThreadlineError('forbidden', 'only group admins can add members')
    const current = new Set(await memberIds(tx, convId))
    const fresh = [...new Set(userIds)].filter(u => !current.has(u))
    const max = deps.config.maxGroupMembers
    if (current.size + fresh.length > max) {
      throw new ThreadlineError('too_large', `a group has at most ${max} members; it has ${current.size}, adding ${fresh.length} would make ${current.size + fresh.length}`)
    }
    await ensureUsers(tx, fresh)
    const added = await insertMembers(tx, convId, fresh.map(u => ({ userId: u, role: 'member' as const })))
    const logId = await logMembershipChange(tx, convId, 'added', added)
    return { conversation: await loadConversation(tx, convId) as Conversation, added, logId }
  })
  await notifyMembership(deps, log, { convId, change: 'added', userIds: added, logId, recipients: conversation.members.map(m => m.user_id) })
  return conversation
}

export async function removeMember (deps: ConversationDeps, log: ErrorLog, userId: string, convId: string, target: string): Promise<void> {
  const { remaining, logId } = await deps.store.transaction(async (tx) => {
    const role = await lockGroup(tx, convId, userId, 'remove members')
    if (target !== userId && role !== 'admin') throw new ThreadlineError('forbidden', 'only group admins can remove other members')
    if (!await deleteMember(tx, convId, target)) throw new ThreadlineError('not_found', `${target} is not a member of conversation ${convId}`)
    const logId = await logMembershipChange(tx, convId, 'removed', [target])
    await keepAnAdmin(tx, convId)
    return { remaining: await memberIds(tx, convId), logId }
  })
  // the removed user learns it too: their devices drop the conversation
  await notifyMembership(deps, log, { convId, change: 'removed', userIds: [target], logId, recipients: [...remaining, target] })
}
