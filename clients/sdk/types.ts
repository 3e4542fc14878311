// The SDK's public types. Wire shapes come from schemas/ (type-only imports: nothing of
// TypeBox reaches a browser bundle); what only the SDK has (outbox entries, folded
// messages with their conversation, the events it emits) is defined here.
import type {
  Conversation,
  ConversationView,
  ErrorCode,
  ErrorEnvelope,
  EventEnvelope,
  FoldedMessage,
  MembershipEnvelope,
  ReceiptMarker
} from '../../schemas/index.js'

export type { Conversation, ConversationView, ErrorCode, ErrorEnvelope, EventEnvelope, MembershipEnvelope, ReceiptMarker }

/** How the client is connected right now. */
export type ClientState = 'connecting' | 'online' | 'offline'

/** The transport carrying the session: MQTT (over TCP or WebSocket) or HTTP long-poll. */
export type TransportKind = 'mqtt' | 'longpoll'

/**
 * - `auto`: MQTT at `mqttUrl` (or over WebSocket at `url`/mqtt); when that can't connect,
 *   long-poll, and back to MQTT as soon as a probe connects again.
 * - `mqtt`: MQTT at `mqttUrl` (TCP or WebSocket), or over WebSocket at `url`/mqtt; never long-poll.
 * - `websocket`: MQTT over WebSocket at `url`/mqtt (or a ws(s) `mqttUrl`); never long-poll.
 * - `longpoll`: HTTP long-poll only.
 */
export type TransportOption = 'auto' | 'mqtt' | 'websocket' | 'longpoll'

export type OutboxStatus = 'pending' | 'sent' | 'delivered' | 'read' | 'failed'

export type SendType = 'text' | 'reaction' | 'edit' | 'delete'

/** One send the client is responsible for, from send() until it is read or failed. */
export interface OutboxEntry {
  /** local id, stable for the life of the entry: use it as the key of the pending bubble */
  temp_id: string
  /** the idempotency key sent with every retry: the server stores the send once */
  client_msg_id: string
  conv_id: string
  type: SendType
  text?: string
  reply_to?: number
  target_seq?: number
  emoji?: string | null
  status: OutboxStatus
  /** set once the server stored it (status `sent` and later) */
  seq?: number
  ts?: string
  /** set when status is `failed`: the server refused the send */
  error?: { code: ErrorCode, message: string }
  /** when send() was called (ISO 8601) */
  created_at: string
}

/**
 * Where the outbox is kept between runs. `save` gets every entry not yet acknowledged
 * each time that set changes; `load` gives them back to a new client, which resends them
 * with their `client_msg_id` (so nothing is stored twice).
 */
export interface OutboxStorage {
  load(): Promise<OutboxEntry[]>
  save(entries: OutboxEntry[]): Promise<void>
}

/** A text message with every edit, delete and reaction aimed at it applied. */
export interface Message extends FoldedMessage {
  conv_id: string
  /** present when the client saw the message's own event (not for history-only messages) */
  client_msg_id?: string
}

/** A `receipts` envelope: markers of members, apply with max. */
export interface ReceiptsSummary {
  t: 'receipts'
  conv_id: string
  markers: ReceiptMarker[]
}

export interface TypingChange {
  conv_id: string
  user_id: string
  typing: boolean
}

export interface PresenceChange {
  user_id: string
  state: 'online' | 'away' | 'offline' | 'unknown'
  last_seen?: string
}

export interface StateChange {
  state: ClientState
  transport: TransportKind | null
}

/** Every event a ThreadlineClient emits, with its listener's signature. */
export interface ClientEvents {
  state: (change: StateChange) => void
  /** durable events, per conversation in seq order, each once (after any gap is filled) */
  event: (envelope: EventEnvelope) => void
  /** a folded message was created or changed (edit, delete, reaction) */
  message: (message: Message, convId: string) => void
  /** an outbox entry changed status */
  outbox: (entry: OutboxEntry) => void
  receipts: (summary: ReceiptsSummary) => void
  membership: (envelope: MembershipEnvelope) => void
  /** `typing: false` also when a remote indicator expires */
  typing: (change: TypingChange) => void
  presence: (change: PresenceChange) => void
  /** a conversation's view changed (new message, unread count, own markers) */
  conversation: (view: ConversationView) => void
  /** error envelopes not tied to an outbox entry, and failures the client can't retry */
  error: (error: ErrorEnvelope | Error) => void
}

export interface BackoffOptions {
  /** the ceiling of the first retry's delay; it doubles per failed attempt (default 500) */
  minMs?: number
  /** the largest ceiling (default 30000) */
  maxMs?: number
  /** a random source in [0, 1) (default Math.random): for tests */
  random?: () => number
}

export interface FallbackOptions {
  /** failed MQTT attempts in a row before `auto` falls back to long-poll (default 2) */
  afterFailures?: number
  /** how often, on long-poll, `auto` tries MQTT again (default 30000) */
  probeMs?: number
}

export interface ThreadlineClientOptions {
  /** the server's HTTP base URL, e.g. http://127.0.0.1:8080; MQTT over WebSocket is ws://…/mqtt */
  url: string
  /** a JWT for this user (its `sub` is the user id) */
  token: string
  /** asked for a fresh token when the server refuses the current one (CONNACK 4/5, HTTP 401) */
  refreshToken?: () => Promise<string>
  /** names this device: 1–64 characters of [A-Za-z0-9_.-] */
  deviceId: string
  transport?: TransportOption
  /** MQTT URL to use instead of ws://…/mqtt, e.g. mqtt://127.0.0.1:1883 in Node */
  mqttUrl?: string
  /** keeps unacknowledged sends across runs (default: in memory) */
  outboxStorage?: OutboxStorage
  backoff?: BackoffOptions
  fallback?: FallbackOptions
  /** a remote typing indicator ends this long after its last `true` (default 5000) */
  typingExpireMs?: number
  /** typing(conv, true) publishes at most this often while composing (default 3000) */
  typingIntervalMs?: number
  /** a send still unanswered this long after it went out is sent again (default 10000) */
  resendAfterMs?: number
  /** an MQTT connection attempt that has no CONNACK by then counts as failed (default 10000) */
  connectTimeoutMs?: number
  /** seconds a long-poll is held by the server (default 30) */
  pollTimeoutS?: number
  /** MQTT keepalive in seconds (default 30) */
  keepaliveS?: number
}

export interface CreateConversationOptions {
  type: 'direct' | 'group'
  title?: string
  members: string[]
}

export interface HistoryOptions {
  /** the newest `limit` messages below this seq (default: the newest) */
  beforeSeq?: number
  /** events per page, 1–200 (default 50) */
  limit?: number
}

export interface SendOptions {
  replyTo?: number
}
