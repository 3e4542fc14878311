// Everything the broker publishes on user/<u>/inbox and conv/<c>/events, and what the
// REST history returns (DESIGN.md §3 "Event envelope").
import Type from 'typebox'
import { ConvId, Seq, Timestamp, UserId } from './ids.js'
import { ErrorCodeSchema } from './errors.js'

export const EventEnvelope = Type.Object({
  t: Type.Literal('event'),
  conv_id: ConvId,
  seq: Seq,
  sender_id: UserId,
  client_msg_id: Type.String(),
  type: Type.Union([Type.Literal('text'), Type.Literal('reaction'), Type.Literal('edit'), Type.Literal('delete')]),
  text: Type.Optional(Type.String()),
  reply_to: Type.Optional(Seq),
  target_seq: Type.Optional(Seq),
  emoji: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  ts: Timestamp
})
export type EventEnvelope = Type.Static<typeof EventEnvelope>

export const ReceiptMarker = Type.Object({
  user_id: UserId,
  delivered_seq: Type.Integer({ minimum: 0 }),
  read_seq: Type.Integer({ minimum: 0 })
})
export type ReceiptMarker = Type.Static<typeof ReceiptMarker>

export const ReceiptsEnvelope = Type.Object({
  t: Type.Literal('receipts'),
  conv_id: ConvId,
  markers: Type.Array(ReceiptMarker)
})

export const MembershipEnvelope = Type.Object({
  t: Type.Literal('membership'),
  conv_id: ConvId,
  change: Type.Union([Type.Literal('added'), Type.Literal('removed')]),
  user_ids: Type.Array(UserId)
})
export type MembershipEnvelope = Type.Static<typeof MembershipEnvelope>

export const ErrorEnvelope = Type.Object({
  t: Type.Literal('error'),
  client_msg_id: Type.Optional(Type.String()),
  conv_id: Type.Optional(Type.String()),
  code: ErrorCodeSchema,
  message: Type.String(),
  /** rate_limited: how long to wait before sending again */
  retry_after_ms: Type.Optional(Type.Integer({ minimum: 1 }))
})
export type ErrorEnvelope = Type.Static<typeof ErrorEnvelope>
