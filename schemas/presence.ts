// Presence (DESIGN.md §3, §6): what a device says on `user/<me>/presence`, what the
// broker publishes retained on `presence/<u>`, and `GET /v1/presence`.
import Type from 'typebox'
import { ID_PATTERN, Timestamp, UserId } from './ids.js'

/** Users one `GET /v1/presence` may ask about. */
export const MAX_PRESENCE_USERS = 100

/** Client → broker on `user/<me>/presence` (QoS 0). Unknown fields are ignored, as on every client topic. */
export const PresenceSet = Type.Object({
  state: Type.Enum(['active', 'away'], { description: 'active: the app is in the foreground; away: in the background' })
})
export type PresenceSet = Type.Static<typeof PresenceSet>

const State = Type.Enum(['online', 'away', 'offline'])

/** Broker → client on `presence/<u>`, retained, published only when the state changes. */
export const PresenceMessage = Type.Object({
  user_id: UserId,
  state: State,
  last_seen: Type.Optional(Timestamp)
})
export type PresenceMessage = Type.Static<typeof PresenceMessage>

export const PresenceQuery = Type.Object({
  user_ids: Type.String({
    minLength: 1,
    // MAX_PRESENCE_USERS ids of at most 64 characters and the commas between them
    maxLength: MAX_PRESENCE_USERS * 65,
    description: `comma-separated user ids, 1–${MAX_PRESENCE_USERS}`
  })
})

/** An id the caller may not see (or that does not exist: the two are not told apart) is `unknown`. */
export const PresenceEntry = Type.Object({
  user_id: Type.String({ pattern: ID_PATTERN }),
  state: Type.Enum(['online', 'away', 'offline', 'unknown']),
  last_seen: Type.Optional(Timestamp)
})
export type PresenceEntry = Type.Static<typeof PresenceEntry>

export const PresenceList = Type.Object({
  presence: Type.Array(PresenceEntry, { description: 'one entry per id asked, in the order asked, duplicates once' })
})
export type PresenceList = Type.Static<typeof PresenceList>
