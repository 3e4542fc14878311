// Stored event rows ↔ the wire envelope of DESIGN.md §3. One mapping, used by the
// live fan-out and by the REST history alike.
import type { EventEnvelope, ErrorEnvelope, SendRequest } from '../../schemas/index.js'
import type { ThreadlineError } from '../../schemas/index.js'

export interface EventRow {
  conv_id: string
  seq: number
  sender_id: string
  client_msg_id: string
  type: EventEnvelope['type']
  body: Record<string, unknown>
  target_seq: number | null
  created_at: Date | string
}

/** The columns every query that builds envelopes selects, aliased `e`. */
export const EVENT_COLUMNS = 'e.conv_id::text AS conv_id, e.seq, e.sender_id, e.client_msg_id, e.type, e.body, e.target_seq, e.created_at'

/** The type fields of a send, as kept in events.body (target_seq has its own column). */
export function bodyOf (req: SendRequest): Record<string, unknown> {
  switch (req.type) {
    case 'text': return req.reply_to === undefined ? { text: req.text } : { text: req.text, reply_to: req.reply_to }
    case 'reaction': return { emoji: req.emoji }
    case 'edit': return { text: req.text }
    case 'delete': return {}
  }
}

// The events of one committed batch share one created_at (the transaction's now(), one
// Date object): formatted once per batch rather than once per event.
let lastTime: Date | string | null = null
let lastIso = ''
function isoOf (time: Date | string): string {
  if (time !== lastTime) {
    lastIso = new Date(time).toISOString()
    lastTime = time
  }
  return lastIso
}

export function toEnvelope (row: EventRow): EventEnvelope {
  return {
    t: 'event',
    conv_id: row.conv_id,
    seq: row.seq,
    sender_id: row.sender_id,
    client_msg_id: row.client_msg_id,
    type: row.type,
    ...row.body,
    ...(row.target_seq !== null ? { target_seq: row.target_seq } : {}),
    ts: isoOf(row.created_at)
  }
}

/** The MQTT form of a refusal: what its HTTP body says (toBody: a rate limit's retry_after_ms too), with what it answers. */
export function errorEnvelope (err: ThreadlineError, context: { client_msg_id?: string, conv_id?: string }): ErrorEnvelope {
  return { t: 'error', ...context, ...err.toBody() }
}
