// ThreadlineClient: the public face of the SDK.
import { TypedEmitter } from './emitter.js'
import type {
  ClientEvents,
  ClientState,
  Conversation,
  ConversationView,
  CreateConversationOptions,
  HistoryOptions,
  Message,
  OutboxEntry,
  PresenceChange,
  SendOptions,
  ThreadlineClientOptions,
  TransportKind
} from './types.js'

const notYet = (): never => { throw new Error('not implemented yet') }

export class ThreadlineClient extends TypedEmitter<ClientEvents> {
  /** the user id: the token's `sub` */
  readonly userId: string
  readonly deviceId: string
  state: ClientState = 'offline'
  transport: TransportKind | null = null

  constructor (options: ThreadlineClientOptions) {
    super()
    this.userId = ''
    this.deviceId = options.deviceId
  }

  /** Resolves once online; rejects on a definitive refusal (a token refused even after refreshToken()). */
  async connect (): Promise<void> { notYet() }
  /** Ends the connection and every timer; the client can't be used afterwards. */
  async close (): Promise<void> { notYet() }

  /** Queues a text message; returns at once with status `pending`. */
  send (_convId: string, _text: string, _options: SendOptions = {}): OutboxEntry { return notYet() }
  /** Sets (or with `null` takes back) this user's reaction to a message. */
  react (_convId: string, _targetSeq: number, _emoji: string | null): OutboxEntry { return notYet() }
  edit (_convId: string, _targetSeq: number, _text: string): OutboxEntry { return notYet() }
  delete (_convId: string, _targetSeq: number): OutboxEntry { return notYet() }
  /** Every entry not yet read or failed, oldest first. */
  outbox (): OutboxEntry[] { return notYet() }

  /** The user has seen everything up to `seq` in the conversation. */
  markRead (_convId: string, _seq: number): void { notYet() }
  /** Throttled: call it on every keystroke; `false` when the user stops or sends. */
  typing (_convId: string, _typing: boolean): void { notYet() }
  /** The users typing in a conversation now (never this user). */
  typingUsers (_convId: string): string[] { return notYet() }
  /** Tells the server the app is in the foreground (`active`) or background (`away`). */
  setPresence (_state: 'active' | 'away'): void { notYet() }
  /** Follows these users' presence ('presence' events); adds to the users already watched. */
  watchPresence (_userIds: string[]): void { notYet() }
  /** The last known presence of a watched user. */
  presenceOf (_userId: string): PresenceChange | undefined { return notYet() }

  /** Every conversation of the user, newest activity first, with unread counts. */
  async conversations (): Promise<ConversationView[]> { return notYet() }
  async createConversation (_options: CreateConversationOptions): Promise<Conversation> { return notYet() }
  /** Older messages, folded, oldest first; they join messages(convId). */
  async history (_convId: string, _options: HistoryOptions = {}): Promise<Message[]> { return notYet() }
  /** The messages the client holds for a conversation, folded, in seq order. */
  messages (_convId: string): Message[] { return notYet() }
  /** Catches up after a long absence: the conversation list, then the events missed. */
  async sync (): Promise<void> { notYet() }
}
