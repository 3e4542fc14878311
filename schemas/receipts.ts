// What a client publishes on conv/<c>/read and POSTs to /v1/conversations/:id/receipts,
// and what the route answers. The `receipts` envelope itself is in envelope.ts. Unknown
// fields are ignored, as for sends.
import Type from 'typebox'
import { ConvId, Seq, UserId } from './ids.js'
import { MAX_SAFE_INTEGER } from './storable.js'

export const RECEIPT_STATUSES = ['delivered', 'read'] as const
export type ReceiptStatus = typeof RECEIPT_STATUSES[number]

export const ReceiptRequest = Type.Object({
  status: Type.Enum(RECEIPT_STATUSES, { description: '"delivered": the device has every event up to seq; "read": the user has seen them (read implies delivered)' }),
  seq: Seq
})
export type ReceiptRequest = Type.Static<typeof ReceiptRequest>

const MarkerSeq = Type.Integer({ minimum: 0, maximum: MAX_SAFE_INTEGER, description: '0 when nothing yet' })

/** Your own markers in one conversation once the receipt is applied (it is stored within the coalescing window). */
export const ReceiptResult = Type.Object({
  conv_id: ConvId,
  user_id: UserId,
  delivered_seq: MarkerSeq,
  read_seq: MarkerSeq
})
export type ReceiptResult = Type.Static<typeof ReceiptResult>
