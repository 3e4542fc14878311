// conv/<c>/typing and POST /v1/conversations/:id/typing (DESIGN.md §3): what a member
// publishes, and what the broker forwards to the conversation's typing subscribers.
import Type from 'typebox'
import { UserId } from './ids.js'

/** Extra fields (a forged `user_id`, say) are ignored: the broker names the sender. */
export const TypingRequest = Type.Object({
  typing: Type.Boolean({ description: 'true while composing (refresh at least every 3 s), false when stopped' })
}, { description: '{"typing": true or false}; other fields are ignored' })
export type TypingRequest = Type.Static<typeof TypingRequest>

/** Published by the broker on conv/<c>/typing, QoS 0, never stored. */
export const TypingSignal = Type.Object({
  user_id: UserId,
  typing: Type.Boolean()
})
export type TypingSignal = Type.Static<typeof TypingSignal>

/** The largest typing payload read; `{"typing":false}` is 16 bytes. */
export const TYPING_MAX_BYTES = 1024
