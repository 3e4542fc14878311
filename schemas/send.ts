// What a client publishes on conv/<c>/send and POSTs to /v1/conversations/:id/messages.
// Unknown fields (a forged sender_id, say) are ignored, not rejected: the broker stamps
// the sender from the connection's token.
import Type from 'typebox'
import { Seq } from './ids.js'
import { StorableString } from './storable.js'

export const MAX_TEXT_CODE_POINTS = 4000

const ClientMsgId = StorableString({ minLength: 1, maxLength: 64, description: 'client-chosen id, unique per sender and conversation: a retry with the same id is not stored twice' })
const Text = StorableString({ minLength: 1, maxLength: MAX_TEXT_CODE_POINTS, description: '1–4000 code points, not blank' }, { nonBlank: true })

export const SendText = Type.Object({
  client_msg_id: ClientMsgId,
  type: Type.Literal('text'),
  text: Text,
  reply_to: Type.Optional(Seq)
})
export const SendReaction = Type.Object({
  client_msg_id: ClientMsgId,
  type: Type.Literal('reaction'),
  target_seq: Seq,
  emoji: Type.Union([StorableString({ minLength: 1, maxLength: 64 }), Type.Null()], { description: 'null removes the sender\'s reaction' })
})
export const SendEdit = Type.Object({
  client_msg_id: ClientMsgId,
  type: Type.Literal('edit'),
  target_seq: Seq,
  text: Text
})
export const SendDelete = Type.Object({
  client_msg_id: ClientMsgId,
  type: Type.Literal('delete'),
  target_seq: Seq
})

export const sendVariants = { text: SendText, reaction: SendReaction, edit: SendEdit, delete: SendDelete } as const
export type EventType = keyof typeof sendVariants
export const EVENT_TYPES = Object.keys(sendVariants) as EventType[]

export const SendRequest = Type.Union([SendText, SendReaction, SendEdit, SendDelete])
export type SendRequest = Type.Static<typeof SendRequest>

export const SendResult = Type.Object({
  conv_id: Type.String(),
  seq: Seq,
  ts: Type.String()
})
export type SendResult = Type.Static<typeof SendResult>
