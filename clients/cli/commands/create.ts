// `threadline create <user_ids...> [--title T] [--type direct|group]`: one user and no title
// make a direct conversation (the same one again for the same pair), a title makes a group.
import { UsageError } from '../errors.js'
import { jsonLine } from '../io.js'
import type { Session } from '../session.js'

export interface CreateOptions { title?: string, type?: 'direct' | 'group', json?: boolean }

export async function create ({ client, io }: Session, members: string[], opts: CreateOptions): Promise<void> {
  const type = opts.type ?? (opts.title !== undefined || members.length > 1 ? 'group' : 'direct')
  if (type === 'direct' && members.length !== 1) throw new UsageError(`a direct conversation has one other member, got ${members.length}: use --title to start a group`)
  if (type === 'direct' && opts.title !== undefined) throw new UsageError('a direct conversation has no title: leave out --title, or use --type group')
  if (type === 'group' && (opts.title === undefined || opts.title.trim() === '')) throw new UsageError('a group needs a title: --title "…"')
  const conversation = await client.createConversation({ type, members, ...(opts.title !== undefined ? { title: opts.title } : {}) })
  // the id alone, so that CONV=$(threadline create bob) works
  io.out(opts.json === true ? jsonLine(conversation) : conversation.id)
}
