// The messages a client holds, folded as the protocol says: per message, the last edit
// gives its text, a delete empties it and its reactions, and per user the last reaction
// gives their emoji. Events arrive here in seq order (from the streams), so "last" is
// simply "latest applied".
import type { FoldedMessage } from '../../schemas/index.js'
import type { EventEnvelope, Message } from './types.js'

/** Messages held per conversation; past it the oldest go (history() brings them back). */
export const MAX_HELD = 5000

export class MessageStore {
  readonly #byConv = new Map<string, Map<number, Message>>()

  /** Applies one event; returns the message it created or changed, if the client holds it. */
  apply (e: EventEnvelope): Message | null {
    const conv = this.#conv(e.conv_id)
    if (e.type === 'text') {
      const message: Message = {
        conv_id: e.conv_id,
        seq: e.seq,
        sender_id: e.sender_id,
        client_msg_id: e.client_msg_id,
        text: e.text ?? '',
        edited: false,
        deleted: false,
        reactions: {},
        ...(e.reply_to !== undefined ? { reply_to: e.reply_to } : {}),
        ts: e.ts
      }
      const held = conv.get(e.seq)
      if (held !== undefined) { // already known from history, folded there
        held.client_msg_id ??= e.client_msg_id
        return held
      }
      conv.set(e.seq, message)
      trim(conv)
      return message
    }
    const target = e.target_seq === undefined ? undefined : conv.get(e.target_seq)
    if (target === undefined || target.deleted) return null
    if (e.type === 'edit') {
      target.text = e.text ?? target.text
      target.edited = true
    } else if (e.type === 'delete') {
      target.deleted = true
      target.text = ''
      target.reactions = {}
    } else if (e.type === 'reaction') {
      target.reactions = react(target.reactions, e.sender_id, e.emoji ?? null)
    }
    return target
  }

  /** Adds messages folded by the server (history); ones already held are kept as they are. */
  merge (convId: string, folded: FoldedMessage[]): Message[] {
    const conv = this.#conv(convId)
    const merged = folded.map((f) => {
      const held = conv.get(f.seq)
      if (held !== undefined) return held
      const message: Message = { ...f, reactions: { ...f.reactions }, conv_id: convId }
      conv.set(f.seq, message)
      return message
    })
    trim(conv)
    return merged
  }

  get (convId: string, seq: number): Message | undefined {
    return this.#byConv.get(convId)?.get(seq)
  }

  list (convId: string): Message[] {
    return [...(this.#byConv.get(convId)?.values() ?? [])].sort((a, b) => a.seq - b.seq)
  }

  forget (convId: string): void {
    this.#byConv.delete(convId)
  }

  #conv (convId: string): Map<number, Message> {
    let conv = this.#byConv.get(convId)
    if (conv === undefined) this.#byConv.set(convId, (conv = new Map()))
    return conv
  }
}

/** A long-running client (a tail, an open tab) keeps a bounded window of each conversation. */
function trim (conv: Map<number, Message>): void {
  if (conv.size <= MAX_HELD) return
  const oldest = [...conv.keys()].sort((a, b) => a - b).slice(0, conv.size - MAX_HELD)
  for (const seq of oldest) conv.delete(seq)
}

/** One reaction per user: the new one replaces the old, `null` takes it back. */
function react (reactions: Record<string, string[]>, userId: string, emoji: string | null): Record<string, string[]> {
  const next: Record<string, string[]> = {}
  for (const [e, users] of Object.entries(reactions)) {
    const rest = users.filter(u => u !== userId)
    if (rest.length > 0) next[e] = rest
  }
  if (emoji !== null) next[emoji] = [...(next[emoji] ?? []), userId]
  return next
}
