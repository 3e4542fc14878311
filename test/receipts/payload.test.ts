// A receipt's payload read straight from its bytes (the exact forms clients send) must
// mean exactly what the full path (UTF-8 check, JSON.parse, the schema) makes of it:
// the same receipt, or the same refusal.
import t from 'tap'
import { ThreadlineError } from '../../schemas/index.js'
import { parseJsonPayload } from '../../core/messages/parse-send.js'
import { parseReceipt, receiptIn } from '../../core/receipts/payload.js'

const MAX_BYTES = 65536

type Outcome = { receipt: unknown } | { refused: string }

function outcome (read: () => unknown): Outcome {
  try {
    return { receipt: read() }
  } catch (err) {
    if (!(err instanceof ThreadlineError)) throw err
    return { refused: `${err.code}: ${err.message}` }
  }
}

const fullPath = (payload: Buffer | string, maxBytes = MAX_BYTES): Outcome =>
  outcome(() => parseReceipt(parseJsonPayload(payload, maxBytes)))

t.test('the exact forms and their near misses: the same receipt or the same refusal as JSON.parse and the schema', async (t) => {
  const payloads = [
    '{"status":"delivered","seq":1}',
    '{"status":"read","seq":1}',
    '{"status":"read","seq":42}',
    '{"status":"delivered","seq":123456789012345}', // 15 digits
    '{"status":"delivered","seq":1234567890123456}', // 16 digits: the full path
    `{"status":"read","seq":${Number.MAX_SAFE_INTEGER}}`,
    `{"status":"read","seq":${Number.MAX_SAFE_INTEGER + 2}}`,
    '{"status":"read","seq":0}',
    '{"status":"read","seq":07}',
    '{"status":"read","seq":-1}',
    '{"status":"read","seq":1.5}',
    '{"status":"read","seq":1e3}',
    '{"status":"read","seq":}',
    '{"status":"read","seq":1',
    '{"status":"read","seq":1}}',
    '{"status":"read","seq":1} ',
    '{"status":"read","seq":"1"}',
    '{"status":"read","seq":1,"extra":true}',
    '{"seq":5,"status":"read"}',
    '{ "status": "read", "seq": 5 }',
    '{"status":"seen","seq":5}',
    '{"status":"read","seq":1x}',
    '{"status":"delivered","seq":'
  ]
  for (const text of payloads) {
    t.same(outcome(() => receiptIn(Buffer.from(text), MAX_BYTES)), fullPath(Buffer.from(text)), `Buffer ${text}`)
    t.same(outcome(() => receiptIn(text, MAX_BYTES)), fullPath(text), `string ${text}`)
  }
  t.same(receiptIn(Buffer.from('{"status":"read","seq":123456789012345}'), MAX_BYTES), { status: 'read', seq: 123456789012345 })
})

t.test('bytes that are not UTF-8 and payloads over the limit are refused as on the full path', async (t) => {
  const notUtf8 = Buffer.concat([Buffer.from('{"status":"read","seq":1'), Buffer.from([0xff]), Buffer.from('}')])
  t.same(outcome(() => receiptIn(notUtf8, MAX_BYTES)), fullPath(notUtf8))
  const exact = Buffer.from('{"status":"read","seq":1}')
  t.same(outcome(() => receiptIn(exact, exact.length - 1)), fullPath(exact, exact.length - 1), 'over THREADLINE_MAX_PAYLOAD_BYTES')
  t.match(outcome(() => receiptIn(exact, exact.length - 1)), { refused: /^too_large/ })
})
