// The payload of a receipt on conv/<c>/read. A busy group sends several receipts per
// member and message (issue 12: ~500 per message in a 250-member group), nearly all in the
// exact bytes clients write, `{"status":"delivered","seq":N}` or `{"status":"read","seq":N}`
// (JSON.stringify of { status, seq }): those are read straight from the bytes. Anything
// else — other key order, spaces, extra fields, a string payload — takes the full path
// (UTF-8 check, JSON.parse, the schema), so both paths accept and refuse the same payloads.
import { ReceiptRequest, ThreadlineError, compileCheck, type ReceiptStatus } from '../../schemas/index.js'
import { parseJsonPayload } from '../messages/parse-send.js'

const checkReceipt = compileCheck(ReceiptRequest, 'receipt')

export function parseReceipt (body: unknown): ReceiptRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ThreadlineError('bad_request', 'receipt must be a JSON object')
  const { status, seq } = checkReceipt(body)
  return { status, seq }
}

const PREFIXES: ReadonlyArray<readonly [Buffer, ReceiptStatus]> = [
  [Buffer.from('{"status":"delivered","seq":'), 'delivered'],
  [Buffer.from('{"status":"read","seq":'), 'read']
]
const CLOSE = 0x7d // }
const ZERO = 0x30
/** 15 digits stay below Number.MAX_SAFE_INTEGER (the schema's bound), so no digit string here can pass it */
const MAX_DIGITS = 15

function startsWith (payload: Buffer, prefix: Buffer): boolean {
  if (payload.length <= prefix.length) return false
  // a byte loop: for ~25 bytes it is cheaper than Buffer.compare's call into C++
  for (let i = 0; i < prefix.length; i++) if (payload[i] !== prefix[i]) return false
  return true
}

/** The receipt when the payload is one of the exact forms; null to take the full path. */
function compact (payload: Buffer): ReceiptRequest | null {
  for (const [prefix, status] of PREFIXES) {
    if (!startsWith(payload, prefix)) continue
    const end = payload.length - 1
    const start = prefix.length
    // JSON has no leading zeros, and the schema wants seq ≥ 1: "0…" is for the full path to refuse
    if (payload[end] !== CLOSE || end - start < 1 || end - start > MAX_DIGITS || payload[start] === ZERO) return null
    let seq = 0
    for (let i = start; i < end; i++) {
      const d = (payload[i] as number) - ZERO
      if (d < 0 || d > 9) return null
      seq = seq * 10 + d
    }
    return { status, seq }
  }
  return null
}

/** The receipt in a payload as it came; throws the ThreadlineError to answer. */
export function receiptIn (payload: Buffer | string, maxBytes: number): ReceiptRequest {
  if (typeof payload !== 'string' && payload.length <= maxBytes) {
    const quick = compact(payload)
    if (quick !== null) return quick
  }
  return parseReceipt(parseJsonPayload(payload, maxBytes))
}
