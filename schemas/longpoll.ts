// The long-poll fallback (DESIGN.md §6): POST /v1/events/queue, GET /v1/events,
// DELETE /v1/events/queue/:id, and the two envelopes only a queue carries (typing and
// presence, which MQTT clients get on their own topics).
import Type from 'typebox'
import { ConvId, DeviceId, UserId } from './ids.js'
import { MAX_SAFE_INTEGER } from './storable.js'
import { PresenceEntry, MAX_PRESENCE_USERS } from './presence.js'

/** Conversations one queue may follow the typing of. */
export const MAX_QUEUE_CONVS = 100
/** Longest a poll may be held, and how long when the client does not say. */
export const POLL_TIMEOUT_MAX_S = 90
export const POLL_TIMEOUT_DEFAULT_S = 30
/** Events one poll answers at most; the rest wait for the next poll. */
export const POLL_PAGE_MAX = 500

/** 32 random bytes, base64url: unguessable, so an id names one queue of one user. */
export const QUEUE_ID_PATTERN = '^[A-Za-z0-9_-]{43}$'
export const QueueId = Type.String({ pattern: QUEUE_ID_PATTERN, description: 'queue id, as POST /v1/events/queue returned it' })
const EventId = Type.Integer({ minimum: 0, maximum: MAX_SAFE_INTEGER, description: 'the id of the last event processed (0 before the first)' })

const follows = {
  conv_ids: Type.Optional(Type.Array(ConvId, {
    maxItems: MAX_QUEUE_CONVS,
    description: 'conversations whose typing indicators this queue carries (members only; others are refused)'
  })),
  user_ids: Type.Optional(Type.Array(UserId, {
    maxItems: MAX_PRESENCE_USERS,
    description: 'users whose presence changes this queue carries, as their privacy settings let you see them'
  }))
}

export const QueueBody = Type.Object({ device_id: DeviceId, ...follows })
export type QueueBody = Type.Static<typeof QueueBody>

/** PATCH /v1/events/queue/:id: what the queue follows from now on, besides the inbox (a list left out: none) */
export const QueueFollowBody = Type.Object(follows)
export type QueueFollowBody = Type.Static<typeof QueueFollowBody>

export const QueueCreated = Type.Object({
  queue_id: QueueId,
  last_event_id: EventId,
  queue_timeout_s: Type.Integer({ description: 'the queue expires when nobody polls it for this long' }),
  presence: Type.Optional(Type.Array(PresenceEntry, { description: 'the current presence of user_ids, as GET /v1/presence answers it; changes follow in the queue' }))
})
export type QueueCreated = Type.Static<typeof QueueCreated>

export const QueueFollowed = Type.Object({
  queue_id: QueueId,
  presence: Type.Optional(Type.Array(PresenceEntry, { description: 'the current presence of user_ids (when given), as GET /v1/presence answers it' }))
})
export type QueueFollowed = Type.Static<typeof QueueFollowed>

export const QueueParams = Type.Object({ id: QueueId })

export const PollQuery = Type.Object({
  queue_id: QueueId,
  last_event_id: EventId,
  timeout: Type.Optional(Type.Integer({
    minimum: 0,
    maximum: POLL_TIMEOUT_MAX_S,
    description: `seconds to hold the poll when nothing is waiting (default ${POLL_TIMEOUT_DEFAULT_S}); 0 answers at once`
  })),
  state: Type.Optional(Type.Enum(['active', 'away'], {
    description: 'the app is in the foreground (active) or not (away), as user/<me>/presence says over MQTT'
  }))
})
export type PollQuery = Type.Static<typeof PollQuery>

export const PollAnswer = Type.Object({
  events: Type.Array(Type.Object({ event_id: Type.Integer({ minimum: 1 }) }, {
    additionalProperties: true,
    description: 'an envelope of user/<me>/inbox (t: event, receipts, membership, error) or t: typing / presence, with its event_id'
  })),
  last_event_id: EventId
})

/** A typing signal as a queue carries it: what conv/<c>/typing carries, with its conversation. */
export const TypingEnvelope = Type.Object({
  t: Type.Literal('typing'),
  conv_id: ConvId,
  user_id: UserId,
  typing: Type.Boolean()
})
export type TypingEnvelope = Type.Static<typeof TypingEnvelope>

/** A presence change as a queue carries it: what presence/<u> carries. */
export const PresenceEnvelope = Type.Object({
  t: Type.Literal('presence'),
  user_id: UserId,
  state: Type.Enum(['online', 'away', 'offline']),
  last_seen: Type.Optional(Type.String())
})
export type PresenceEnvelope = Type.Static<typeof PresenceEnvelope>
