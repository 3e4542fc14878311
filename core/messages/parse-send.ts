// Turns a raw send (MQTT payload bytes or an HTTP body) into a validated SendRequest,
// or a catalog error. Synchronous on purpose: see GroupCommitter.submit.
import { isUtf8 } from 'node:buffer'
import { MAX_TEXT_CODE_POINTS, SendRequest, ThreadlineError, compileCheck, isUuid, sendVariants, type EventType } from '../../schemas/index.js'

const checks = Object.fromEntries(
  Object.entries(sendVariants).map(([type, schema]) => [type, compileCheck(schema, `${type} send`)])
) as Record<EventType, (v: unknown) => SendRequest>

function codePoints (s: string): number {
  let n = 0
  for (const _codePoint of s) n++ // eslint-disable-line @typescript-eslint/no-unused-vars
  return n
}

/** A send's client_msg_id when it has a usable one, to name it in the answer to a refused send. */
export function clientMsgIdOf (body: unknown): string | undefined {
  const id = (body as { client_msg_id?: unknown } | null)?.client_msg_id
  return typeof id === 'string' && id.length <= 64 ? id : undefined
}

export function parseJsonPayload (raw: Buffer | string, maxBytes: number): unknown {
  const payload = typeof raw === 'string' ? Buffer.from(raw) : raw
  if (payload.length > maxBytes) throw new ThreadlineError('too_large', `payload is ${payload.length} bytes; the limit is ${maxBytes}`)
  // toString() would turn invalid bytes into U+FFFD, silently changing the text and even
  // the client_msg_id that idempotency keys on: refuse instead
  if (!isUtf8(payload)) throw new ThreadlineError('bad_request', 'payload is not valid UTF-8')
  try {
    return JSON.parse(payload.toString())
  } catch {
    throw new ThreadlineError('bad_request', 'payload is not valid JSON')
  }
}

export function checkConvId (convId: string): string {
  if (!isUuid(convId)) throw new ThreadlineError('bad_request', `conversation id ${JSON.stringify(convId.slice(0, 80))} is not a UUID`)
  return convId.toLowerCase()
}

/** Extra fields (a forged sender_id, say) are dropped, not rejected. */
export function parseSend (body: unknown): SendRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ThreadlineError('bad_request', 'send must be a JSON object')
  const type = (body as { type?: unknown }).type
  if (typeof type !== 'string' || !(type in checks)) {
    throw new ThreadlineError('bad_request', `type must be one of ${Object.keys(checks).join(', ')}`)
  }
  const text = (body as { text?: unknown }).text
  if (typeof text === 'string' && codePoints(text) > MAX_TEXT_CODE_POINTS) {
    throw new ThreadlineError('too_large', `text is over ${MAX_TEXT_CODE_POINTS} code points`)
  }
  const req = checks[type as EventType](body)
  const { client_msg_id: clientMsgId } = req
  switch (req.type) {
    case 'text': return { client_msg_id: clientMsgId, type: 'text', text: req.text, ...(req.reply_to !== undefined ? { reply_to: req.reply_to } : {}) }
    case 'reaction': return { client_msg_id: clientMsgId, type: 'reaction', target_seq: req.target_seq, emoji: req.emoji }
    case 'edit': return { client_msg_id: clientMsgId, type: 'edit', target_seq: req.target_seq, text: req.text }
    case 'delete': return { client_msg_id: clientMsgId, type: 'delete', target_seq: req.target_seq }
  }
}
