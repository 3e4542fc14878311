// Bodies, parameters and answers of the REST sidecar (DESIGN.md §6). The Fastify routes,
// their validation, the OpenAPI document at /docs and the handlers' TS types all derive
// from these.
import Type from 'typebox'
import { ConvId, DeviceId, Seq, Timestamp, UserId } from './ids.js'
import { EventEnvelope } from './envelope.js'
import { MAX_SAFE_INTEGER, StorableString } from './storable.js'
import { ErrorBody } from './errors.js'

export const CONVERSATIONS_PAGE_DEFAULT = 20
export const CONVERSATIONS_PAGE_MAX = 100
export const HISTORY_PAGE_DEFAULT = 50
export const HISTORY_PAGE_MAX = 200
export const MAX_TITLE_LENGTH = 200
/**
 * unread_count (and the push badge) saturate here, as messengers show "999+": the server
 * counts at most this many unread messages per conversation, so a member back after months
 * in a busy group costs the list a bounded walk, not one row per message missed.
 */
export const UNREAD_COUNT_MAX = 999
/**
 * Users named in one request. schemas/ can't read the configured group size, so this is
 * the largest THREADLINE_MAX_GROUP_MEMBERS allows; the services check the configured one.
 * It keeps a body raised with THREADLINE_MAX_PAYLOAD_BYTES from reaching the store.
 */
export const MAX_USERS_PER_REQUEST = 100_000

const SeqOrZero = Type.Integer({ minimum: 0, maximum: MAX_SAFE_INTEGER, description: '0 when nothing yet' })
const Nullable = <T extends Type.TSchema>(schema: T) => Type.Union([schema, Type.Null()])

export const ConversationType = Type.Enum(['direct', 'group'])
export const MemberRole = Type.Enum(['member', 'admin'])
export const PresenceVisibility = Type.Enum(['everyone', 'contacts', 'nobody'])

/** The answer of every failure, as documented in OpenAPI. */
export const Failure = Type.Object(ErrorBody.properties, { description: '{"code","message"}: code from the error catalog, message for humans' })
export const NoContent = Type.Null({ description: 'done; no body' })

// ── conversations ──────────────────────────────────────────────────────────────────────

export const CreateConversationBody = Type.Object({
  type: ConversationType,
  title: Type.Optional(StorableString({ minLength: 1, maxLength: MAX_TITLE_LENGTH, description: 'required for groups; direct conversations have none; not blank' }, { nonBlank: true })),
  members: Type.Array(UserId, {
    minItems: 1,
    maxItems: MAX_USERS_PER_REQUEST,
    description: 'direct: the one other user; group: the members besides the creator (the creator joins as admin); users not seen yet are created'
  })
})
export type CreateConversationBody = Type.Static<typeof CreateConversationBody>

export const Member = Type.Object({
  user_id: UserId,
  role: MemberRole,
  display_name: Type.Optional(Type.String())
})
export type Member = Type.Static<typeof Member>

const conversationFields = {
  id: ConvId,
  type: ConversationType,
  title: Nullable(Type.String()),
  members: Type.Array(Member),
  last_seq: SeqOrZero,
  created_at: Timestamp
}
export const Conversation = Type.Object(conversationFields)
export type Conversation = Type.Static<typeof Conversation>

export const MessagePreview = Type.Object({
  seq: Seq,
  sender_id: UserId,
  text: Type.String({ description: 'current text, after edits' }),
  edited: Type.Boolean(),
  ts: Timestamp
})
export type MessagePreview = Type.Static<typeof MessagePreview>

export const OwnMarkers = Type.Object({
  delivered_seq: SeqOrZero,
  read_seq: SeqOrZero
})

/** A conversation as one member sees it: list items and details share this shape. */
export const ConversationView = Type.Object({
  ...conversationFields,
  last_message: Nullable(MessagePreview),
  unread_count: Type.Integer({
    minimum: 0,
    maximum: UNREAD_COUNT_MAX,
    description: `text messages from others above the own read_seq, not deleted; exact below ${UNREAD_COUNT_MAX}, and ${UNREAD_COUNT_MAX} means ${UNREAD_COUNT_MAX} or more`
  }),
  markers: OwnMarkers,
  muted_until: Nullable(Timestamp)
})
export type ConversationView = Type.Static<typeof ConversationView>

export const ListConversationsQuery = Type.Object({
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: CONVERSATIONS_PAGE_MAX, default: CONVERSATIONS_PAGE_DEFAULT }))
})

export const ConversationList = Type.Object({
  conversations: Type.Array(ConversationView),
  next_cursor: Nullable(Type.String({ description: 'opaque; null on the last page' }))
})
export type ConversationList = Type.Static<typeof ConversationList>

export const ConversationParams = Type.Object({ id: ConvId })
export const MemberParams = Type.Object({ id: ConvId, user_id: UserId })

export const AddMembersBody = Type.Object({
  user_ids: Type.Array(UserId, { minItems: 1, maxItems: MAX_USERS_PER_REQUEST, description: 'users to add; users already in the conversation are skipped' })
})

export const MemberSettingsBody = Type.Object({
  muted_until: Nullable(Type.String({ format: 'date-time', description: 'no push until then; null unmutes' }))
})

export const MemberSettings = Type.Object({
  conv_id: ConvId,
  user_id: UserId,
  muted_until: Nullable(Timestamp)
})
export type MemberSettings = Type.Static<typeof MemberSettings>

// ── history ────────────────────────────────────────────────────────────────────────────

export const HistoryQuery = Type.Object({
  after_seq: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SAFE_INTEGER, description: 'the oldest `limit` events above this seq' })),
  before_seq: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_SAFE_INTEGER, description: 'the newest `limit` events below this seq' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: HISTORY_PAGE_MAX, default: HISTORY_PAGE_DEFAULT }))
})

export const FoldedMessage = Type.Object({
  seq: Seq,
  sender_id: UserId,
  text: Type.String({ description: 'current text after edits; empty once deleted' }),
  edited: Type.Boolean(),
  deleted: Type.Boolean(),
  reactions: Type.Record(Type.String(), Type.Array(UserId), { description: 'emoji → users, one reaction per user' }),
  reply_to: Type.Optional(Seq),
  ts: Timestamp
})
export type FoldedMessage = Type.Static<typeof FoldedMessage>

export const HistoryPage = Type.Object({
  events: Type.Array(EventEnvelope, { description: 'ascending seq' }),
  messages: Type.Array(FoldedMessage, { description: 'the text messages among the events, folded with every later edit, delete and reaction' }),
  has_more: Type.Boolean({ description: 'more events lie beyond this page in the direction it was read' })
})
export type HistoryPage = Type.Static<typeof HistoryPage>

// ── devices (push tokens) ──────────────────────────────────────────────────────────────

export const Platform = Type.Enum(['ios', 'android', 'web'])
export type Platform = Type.Static<typeof Platform>
/** Printable ASCII without spaces: what APNs device tokens (hex) and FCM registration tokens are made of. */
export const PUSH_TOKEN_PATTERN = '^[\\x21-\\x7e]{1,4096}$'
/** APNs device tokens are hex (32 bytes today; Apple asks not to rely on the length). */
export const APNS_TOKEN_PATTERN = '^(?:[0-9a-fA-F]{2}){16,256}$'

export const DeviceParams = Type.Object({ device_id: DeviceId })
export const DeviceBody = Type.Object({
  platform: Platform,
  push_token: Type.String({
    pattern: PUSH_TOKEN_PATTERN,
    description: 'ios: the APNs device token in hex; android and web: the FCM registration token'
  })
})
export type DeviceBody = Type.Static<typeof DeviceBody>
export const Device = Type.Object({
  device_id: DeviceId,
  platform: Platform,
  push_token: Type.String(),
  updated_at: Timestamp
})
export type Device = Type.Static<typeof Device>

// ── profile and health ─────────────────────────────────────────────────────────────────

/** What `PATCH /v1/me/settings` changes and answers. */
export const UserSettings = Type.Object({
  presence_visibility: PresenceVisibility
})
export type UserSettings = Type.Static<typeof UserSettings>

/** A PATCH: the settings to change, at least one; an unknown name is refused (a typo must not pass as done). */
export const UserSettingsBody = Type.Object({
  presence_visibility: Type.Optional(Type.Enum(['everyone', 'contacts', 'nobody'], {
    description: 'who sees your presence: everyone, contacts (users who share a conversation with you), nobody; you always see your own'
  }))
}, { additionalProperties: false, minProperties: 1 })
export type UserSettingsBody = Type.Static<typeof UserSettingsBody>

export const Me = Type.Object({
  user_id: UserId,
  display_name: Type.String(),
  settings: UserSettings
})
export type Me = Type.Static<typeof Me>

export const HealthStatus = Type.Object({ status: Type.Literal('ok') })
