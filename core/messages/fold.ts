// Folding (DESIGN.md §5): a text message as a simple client shows it, after every edit,
// delete and reaction aimed at it. Pure, so both store drivers share it.
import type { EventRow } from './envelopes.js'
import type { FoldedMessage } from '../../schemas/index.js'
import { iso } from '../iso.js'

interface Folding {
  message: FoldedMessage
  /** user → emoji; Map keeps the order in which users (last) reacted */
  reactions: Map<string, string>
}

/**
 * The text messages among `page`, folded with `targeting` (events aimed at them, any
 * seq, ascending). The send path already refuses edits and deletes by anyone but the
 * sender and anything aimed at a deleted message; folding trusts the stored order.
 */
export function foldMessages (page: readonly EventRow[], targeting: readonly EventRow[]): FoldedMessage[] {
  const bySeq = new Map<number, Folding>()
  for (const row of page) {
    if (row.type !== 'text') continue
    const replyTo = row.body.reply_to
    bySeq.set(row.seq, {
      message: {
        seq: row.seq,
        sender_id: row.sender_id,
        text: typeof row.body.text === 'string' ? row.body.text : '',
        edited: false,
        deleted: false,
        reactions: {},
        ...(typeof replyTo === 'number' ? { reply_to: replyTo } : {}),
        ts: iso(row.created_at)
      },
      reactions: new Map()
    })
  }
  for (const row of targeting) {
    const f = row.target_seq === null ? undefined : bySeq.get(row.target_seq)
    if (!f || f.message.deleted) continue
    switch (row.type) {
      case 'edit':
        f.message.text = typeof row.body.text === 'string' ? row.body.text : f.message.text
        f.message.edited = true
        break
      case 'delete':
        // a deleted message keeps its place in the thread but shows nothing
        f.message.deleted = true
        f.message.text = ''
        f.reactions.clear()
        break
      case 'reaction': {
        // one reaction per user and message: a later one replaces it, null takes it back
        f.reactions.delete(row.sender_id)
        const emoji = row.body.emoji
        if (typeof emoji === 'string') f.reactions.set(row.sender_id, emoji)
        break
      }
    }
  }
  return [...bySeq.values()].map(({ message, reactions }) => {
    for (const [user, emoji] of reactions) (message.reactions[emoji] ??= []).push(user)
    return message
  })
}
