// ThreadlineClient: the public face of the SDK. It wires the parts together — a
// Connection (transports, backoff, fallback), the Outbox, one ConversationStream per
// conversation (seq order, gap fill), the MessageStore (folding) and Typing — and keeps
// the conversation list current. It holds no global state: two clients in one process
// are two users.
import { Auth } from './auth.js'
import { Connection } from './connection.js'
import { ConversationList } from './conversations.js'
import { TypedEmitter } from './emitter.js'
import { HttpApi, ThreadlineApiError, ThreadlineSendError } from './http.js'
import { randomId } from './ids.js'
import { MessageStore } from './messages.js'
import { Outbox, type Dispatcher } from './outbox.js'
import { MemoryOutboxStorage } from './outbox-storage.js'
import { ReceiptSender } from './receipts.js'
import type { HistoryPage } from './stream.js'
import { Streams } from './streams.js'
import { Timers, type TimerHandle } from './timers.js'
import type { Follow, Inbound, Transport } from './transport.js'
import { Typing } from './typing.js'
import type {
  ClientEvents,
  ClientState,
  Conversation,
  ConversationView,
  CreateConversationOptions,
  ErrorEnvelope,
  EventEnvelope,
  HistoryOptions,
  MembershipEnvelope,
  Message,
  OutboxEntry,
  PresenceChange,
  ReceiptsSummary,
  SendOptions,
  SendType,
  ThreadlineClientOptions,
  TransportKind
} from './types.js'
import type { FoldedMessage, SyncAnswer } from '../../schemas/index.js'

const DEFAULTS = {
  transport: 'auto',
  typingExpireMs: 5000,
  typingIntervalMs: 3000,
  resendAfterMs: 10_000,
  connectTimeoutMs: 10_000,
  pollTimeoutS: 30,
  keepaliveS: 30,
  afterFailures: 2,
  probeMs: 30_000
} as const

/** Conversations whose typing a connection follows unless the app touches more. */
const FOLLOW_CONVS = 100
/** Pages history() reads at most looking for a message among reactions and edits. */
const HISTORY_PAGES = 10

export class ThreadlineClient extends TypedEmitter<ClientEvents> {
  /** the user id: the token's `sub` */
  readonly userId: string
  readonly deviceId: string
  state: ClientState = 'offline'
  transport: TransportKind | null = null

  readonly #auth: Auth
  readonly #http: HttpApi
  readonly #timers = new Timers()
  readonly #connection: Connection
  readonly #outbox: Outbox
  readonly #messages = new MessageStore()
  readonly #typing: Typing
  readonly #streams: Streams
  readonly #views: ConversationList
  readonly #presence = new Map<string, PresenceChange>()
  /** when (in presence changes received) each user's last change came */
  readonly #presenceHeard = new Map<string, number>()
  #presenceCount = 0
  readonly #watched = new Set<string>()
  readonly #followed = new Set<string>()
  readonly #fetchingViews = new Set<string>()
  readonly #receipts: ReceiptSender
  readonly #resendAfterMs: number
  #resendTimer: TimerHandle | undefined
  #syncCursor: string | null = null
  #syncing: Promise<void> = Promise.resolve()
  #away = false
  #connecting: Promise<void> | null = null
  #closed = false

  constructor (options: ThreadlineClientOptions) {
    super()
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.deviceId)) throw new TypeError('deviceId must be 1–64 characters of [A-Za-z0-9_.-]')
    const base = options.url.replace(/\/+$/, '')
    if (!/^https?:\/\//.test(base)) throw new TypeError('url must be the server\'s http(s) base URL, e.g. http://127.0.0.1:8080')
    this.#auth = new Auth(options.token, options.refreshToken)
    this.userId = this.#auth.userId
    this.deviceId = options.deviceId
    this.#http = new HttpApi(base, this.#auth)
    this.#resendAfterMs = options.resendAfterMs ?? DEFAULTS.resendAfterMs
    const transport = options.transport ?? DEFAULTS.transport
    if (transport === 'websocket' && options.mqttUrl !== undefined && !/^wss?:/.test(options.mqttUrl)) {
      throw new TypeError('transport "websocket" needs a ws:// or wss:// mqttUrl (or none)')
    }
    this.#connection = new Connection({
      option: transport,
      mqttUrl: options.mqttUrl ?? base.replace(/^http/, 'ws') + '/mqtt',
      deviceId: options.deviceId,
      auth: this.#auth,
      http: this.#http,
      timers: this.#timers,
      backoff: options.backoff ?? {},
      afterFailures: options.fallback?.afterFailures ?? DEFAULTS.afterFailures,
      probeMs: options.fallback?.probeMs ?? DEFAULTS.probeMs,
      keepaliveS: options.keepaliveS ?? DEFAULTS.keepaliveS,
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      pollTimeoutS: options.pollTimeoutS ?? DEFAULTS.pollTimeoutS,
      follow: () => this.#follow(),
      envelope: e => this.#inbound(e),
      state: (state, kind) => this.#setState(state, kind),
      up: t => this.#up(t),
      reopened: () => this.#catchUp(),
      fatal: err => this.emit('error', err)
    })
    this.#outbox = new Outbox({
      storage: options.outboxStorage ?? new MemoryOutboxStorage(),
      resendAfterMs: this.#resendAfterMs,
      changed: entry => this.emit('outbox', entry),
      failedToSave: err => this.emit('error', err instanceof Error ? err : new Error(String(err)))
    })
    this.#typing = new Typing({
      timers: this.#timers,
      me: this.userId,
      expireMs: options.typingExpireMs ?? DEFAULTS.typingExpireMs,
      intervalMs: options.typingIntervalMs ?? DEFAULTS.typingIntervalMs,
      publish: (convId, typing) => {
        const t = this.#connection.current
        if (t === null) return false
        t.typing(convId, typing).catch(() => {})
        return true
      },
      changed: change => this.emit('typing', change)
    })
    this.#receipts = new ReceiptSender(this.#timers, () => this.#connection.current, err => this.emit('error', err))
    this.#streams = new Streams({
      http: this.#http,
      timers: this.#timers,
      release: e => this.#release(e),
      met: convId => { if (!this.#views.has(convId)) this.#fetchView(convId) },
      online: () => this.#connection.current !== null
    })
    this.#views = new ConversationList({
      me: this.userId,
      messages: this.#messages,
      countUnread: view => this.#countUnread(view),
      changed: view => this.emit('conversation', view)
    })
  }

  // ── lifecycle ────────────────────────────────────────────────────────────────────────

  /**
   * Loads the outbox, connects, and catches up (the conversation list, missed events).
   * Resolves once online; rejects on a definitive refusal (a token refused even after
   * refreshToken()). Network failures are retried, not reported: watch 'state'.
   */
  connect (): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the client is closed'))
    this.#connecting ??= (async () => {
      await this.#outbox.load()
      for (const entry of this.#outbox.list()) this.emit('outbox', entry)
      await this.#connection.start()
      await this.#syncing.catch(() => {}) // reported as 'error'; the next connection tries again
    })()
    return this.#connecting
  }

  /** Ends the connection and every timer; the client can't be used afterwards. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#connection.close()
    this.#receipts.close()
    this.#timers.close()
    await this.#outbox.saved()
    this.#setState('offline', null)
  }

  // ── sending ──────────────────────────────────────────────────────────────────────────

  /** Queues a text message; returns at once with status `pending`. */
  send (convId: string, text: string, options: SendOptions = {}): OutboxEntry {
    this.#typing.local(convId, false)
    return this.#queue(convId, 'text', { text, ...(options.replyTo !== undefined ? { reply_to: options.replyTo } : {}) })
  }

  /** Sets (or with `null` takes back) this user's reaction to a message. */
  react (convId: string, targetSeq: number, emoji: string | null): OutboxEntry {
    return this.#queue(convId, 'reaction', { target_seq: targetSeq, emoji })
  }

  edit (convId: string, targetSeq: number, text: string): OutboxEntry {
    return this.#queue(convId, 'edit', { target_seq: targetSeq, text })
  }

  delete (convId: string, targetSeq: number): OutboxEntry {
    return this.#queue(convId, 'delete', { target_seq: targetSeq })
  }

  /**
   * Resolves with the entry once the server stored it (status `sent` or later); rejects
   * with a ThreadlineSendError carrying its code when the server refused it, or an Error
   * when the client closes first. For scripts that must know a send landed before they exit.
   */
  sent (tempId: string): Promise<OutboxEntry> {
    return new Promise((resolve, reject) => {
      const check = (entry: OutboxEntry | undefined): boolean => {
        if (entry === undefined || entry.temp_id !== tempId || entry.status === 'pending') return false
        this.off('outbox', onChange)
        this.off('state', onState)
        if (entry.status === 'failed') reject(new ThreadlineSendError(entry))
        else resolve(entry)
        return true
      }
      const onChange = (entry: OutboxEntry): void => { check(entry) }
      const onState = (): void => {
        if (!this.#closed) return
        this.off('outbox', onChange)
        this.off('state', onState)
        reject(new Error('the client closed before the send was answered'))
      }
      if (check(this.#outbox.find(tempId))) return
      this.on('outbox', onChange)
      this.on('state', onState)
    })
  }

  /** Entries not yet settled for good: pending, sent, delivered, and failed ones. */
  outbox (): OutboxEntry[] {
    return this.#outbox.list()
  }

  #queue (convId: string, type: SendType, fields: Partial<OutboxEntry>): OutboxEntry {
    if (this.#closed) throw new Error('the client is closed')
    const id = randomId()
    const entry: OutboxEntry = { temp_id: `tmp-${id}`, client_msg_id: id, conv_id: convId, type, ...fields, status: 'pending', created_at: new Date().toISOString() }
    this.#outbox.add(entry)
    this.#touch(convId)
    const t = this.#connection.current
    if (t !== null) {
      this.#outbox.dispatch(this.#dispatcher(t), entry)
      this.#armResend()
    }
    return { ...entry }
  }

  #dispatcher (t: Transport): Dispatcher {
    return { serial: t.kind === 'longpoll', send: (convId, payload) => t.send(convId, payload) }
  }

  // ── receipts, typing, presence ───────────────────────────────────────────────────────

  /**
   * The user has seen everything up to `seq` in the conversation. The unread count drops at
   * once; the promise resolves when the server has the receipt (or refused it: see
   * 'error'), which a process about to exit waits for. It never rejects.
   */
  markRead (convId: string, seq: number): Promise<void> {
    this.#views.markers(convId, { delivered_seq: seq, read_seq: seq })
    return this.#receipts.read(convId, seq)
  }

  /** Throttled: call it on every keystroke; `false` when the user stops or sends. */
  typing (convId: string, typing: boolean): void {
    this.#touch(convId)
    this.#typing.local(convId, typing)
  }

  /** The users typing in a conversation now (never this user). */
  typingUsers (convId: string): string[] {
    return this.#typing.users(convId)
  }

  /** Tells the server the app is in the foreground (`active`) or background (`away`). */
  setPresence (state: 'active' | 'away'): void {
    this.#away = state === 'away'
    this.#connection.current?.presence(state)
  }

  /** Follows these users' presence ('presence' events); adds to the users already watched. */
  watchPresence (userIds: string[]): void {
    const added = userIds.filter(u => !this.#watched.has(u) && u !== this.userId)
    if (added.length === 0) return
    for (const u of added) this.#watched.add(u)
    void this.#connection.current?.follow(this.#follow())
    // where they are now (a user never seen online has no retained state to deliver),
    // unless the transport brought something fresher meanwhile
    const asked = this.#presenceCount
    this.#http.request<{ presence: PresenceChange[] }>('GET', '/v1/presence', { query: { user_ids: added.slice(0, 100).join(',') } })
      .then(({ body }) => {
        for (const p of body.presence) {
          if (!this.#closed && (this.#presenceHeard.get(p.user_id) ?? -1) < asked) this.#inbound({ ...p, t: 'presence' })
        }
      }, () => {})
  }

  /** The last known presence of a watched user. */
  presenceOf (userId: string): PresenceChange | undefined {
    const p = this.#presence.get(userId)
    return p === undefined ? undefined : { ...p }
  }

  // ── conversations and history ────────────────────────────────────────────────────────

  /** Every conversation of the user, newest activity first, with unread counts. */
  async conversations (): Promise<ConversationView[]> {
    const all: ConversationView[] = []
    let cursor: string | undefined
    do {
      const { body } = await this.#http.request<{ conversations: ConversationView[], next_cursor: string | null }>(
        'GET', '/v1/conversations', { query: { limit: 100, cursor } })
      all.push(...body.conversations)
      cursor = body.next_cursor ?? undefined
    } while (cursor !== undefined)
    for (const view of all) this.#learn(view)
    return all.map(v => this.#views.get(v.id) ?? v)
  }

  async createConversation (options: CreateConversationOptions): Promise<Conversation> {
    const { body } = await this.#http.request<Conversation>('POST', '/v1/conversations', { body: options })
    this.#streams.joined(body.id)
    this.#touch(body.id)
    return body
  }

  /**
   * Older messages, folded, oldest first: the newest page below `beforeSeq` (default: the
   * newest page). They join messages(convId). An empty answer means there is nothing older.
   */
  async history (convId: string, options: HistoryOptions = {}): Promise<Message[]> {
    this.#touch(convId)
    let before = options.beforeSeq
    for (let pages = 0; pages < HISTORY_PAGES; pages++) {
      const page = await this.#http.request<HistoryPage & { messages: FoldedMessage[] }>('GET', `/v1/conversations/${convId}/events`, {
        query: { before_seq: before, limit: options.limit }
      })
      const messages = this.#messages.merge(convId, page.body.messages)
      const first = page.body.events[0]
      // a page of reactions and edits only: read further back rather than answer nothing
      if (messages.length > 0 || !page.body.has_more || first === undefined) return messages.map(m => structuredClone(m))
      before = first.seq
    }
    return []
  }

  /** The messages the client holds for a conversation, folded, in seq order. */
  messages (convId: string): Message[] {
    return this.#messages.list(convId).map(m => structuredClone(m))
  }

  /**
   * Catches up after a long absence: what changed since the last sync (GET /v1/sync), then
   * the events missed in each conversation, released in order as 'event's. Runs by itself
   * on every (re)connection.
   */
  sync (): Promise<void> {
    const run = this.#syncing.catch(() => {}).then(() => this.#syncOnce())
    this.#syncing = run
    return run
  }

  async #syncOnce (): Promise<void> {
    let cursor = this.#syncCursor
    const fills: Array<Promise<void>> = []
    // a full sync lists every conversation the user is in, and no removals: whatever it
    // does not answer was left
    const seen = new Set<string>()
    let full = cursor === null
    for (;;) {
      let answer: SyncAnswer
      try {
        ({ body: answer } = await this.#http.request<SyncAnswer>('GET', '/v1/sync', { query: { limit: 100, cursor: cursor ?? undefined } }))
      } catch (err) {
        if (err instanceof ThreadlineApiError && err.code === 'cursor_expired' && cursor !== null) {
          cursor = null // the server forgot what changed since: start over with a full sync
          full = true
          continue
        }
        throw err
      }
      for (const view of answer.conversations) {
        seen.add(view.id)
        const fill = this.#learn(view)
        if (fill !== null) fills.push(fill)
      }
      for (const id of answer.removed) this.#forget(id)
      cursor = answer.cursor
      if (!answer.has_more) break
    }
    this.#syncCursor = cursor
    if (full) for (const id of this.#views.ids()) if (!seen.has(id)) this.#forget(id)
    await Promise.all(fills)
    // typing of the conversations just learned reaches the client once this resolves
    await this.#connection.current?.follow(this.#follow())
  }

  #catchUp (): void {
    this.sync().catch((err: unknown) => this.emit('error', err instanceof Error ? err : new Error(String(err))))
  }

  // ── what a connection brings ─────────────────────────────────────────────────────────

  #setState (state: ClientState, kind: TransportKind | null): void {
    if (this.#closed && state !== 'offline') return
    if (state === this.state && kind === this.transport) return
    this.state = state
    this.transport = kind
    if (state !== 'online') {
      this.#timers.clear(this.#resendTimer)
      this.#resendTimer = undefined
    }
    this.emit('state', { state, transport: kind })
  }

  #up (t: Transport): void {
    if (this.#away) t.presence('away')
    this.#outbox.flush(this.#dispatcher(t))
    this.#armResend()
    this.#receipts.flush()
    this.#streams.refill()
    this.#catchUp()
  }

  #armResend (): void {
    if (this.#resendTimer !== undefined) return
    this.#resendTimer = this.#timers.set(() => {
      this.#resendTimer = undefined
      const t = this.#connection.current
      if (t === null) return
      const next = this.#outbox.resendOverdue(this.#dispatcher(t), Date.now())
      if (next !== null) this.#armResend()
    }, this.#resendAfterMs / 2)
  }

  #inbound (e: Inbound): void {
    switch (e.t) {
      case 'event': return this.#onEvent(e as unknown as EventEnvelope)
      case 'receipts': return this.#onReceipts(e as unknown as ReceiptsSummary)
      case 'membership': return this.#onMembership(e as unknown as MembershipEnvelope)
      case 'error':
        if (!this.#outbox.onError(e as unknown as ErrorEnvelope)) this.emit('error', e as unknown as ErrorEnvelope)
        return
      case 'typing':
        if (typeof e.conv_id === 'string' && typeof e.user_id === 'string' && typeof e.typing === 'boolean') this.#typing.remote(e.conv_id, e.user_id, e.typing)
        return
      case 'presence': {
        if (typeof e.user_id !== 'string' || typeof e.state !== 'string') return
        const change = { user_id: e.user_id, state: e.state, ...(typeof e.last_seen === 'string' ? { last_seen: e.last_seen } : {}) } as PresenceChange
        this.#presence.set(change.user_id, change)
        this.#presenceHeard.set(change.user_id, this.#presenceCount++)
        this.emit('presence', { ...change })
      }
    }
  }

  #onEvent (e: EventEnvelope): void {
    if (typeof e.conv_id !== 'string' || !Number.isSafeInteger(e.seq) || e.seq < 1) return
    this.#outbox.onEvent(e, this.userId)
    this.#streams.offer(e)
  }

  #release (e: EventEnvelope): void {
    const message = this.#messages.apply(e)
    this.#views.applyEvent(e)
    if (e.sender_id !== this.userId) {
      this.#typing.stopped(e.conv_id, e.sender_id)
      this.#receipts.delivered(e.conv_id, e.seq)
    }
    this.emit('event', e)
    if (message !== null) this.emit('message', structuredClone(message), e.conv_id)
  }

  #onReceipts (summary: ReceiptsSummary): void {
    this.#outbox.onReceipts(summary, this.userId)
    const mine = summary.markers.find(m => m.user_id === this.userId)
    if (mine !== undefined) this.#views.markers(summary.conv_id, mine)
    this.emit('receipts', summary)
  }

  #onMembership (e: MembershipEnvelope): void {
    if (e.change === 'added' && e.user_ids.includes(this.userId)) {
      this.#streams.joined(e.conv_id)
      this.#touch(e.conv_id)
    }
    if (e.change === 'removed' && e.user_ids.includes(this.userId)) this.#forget(e.conv_id)
    else this.#fetchView(e.conv_id) // its members changed
    this.emit('membership', e)
  }

  // ── the conversation list ────────────────────────────────────────────────────────────

  /**
   * Takes a conversation as the server shows it. A conversation new to the client starts
   * its stream at the view's last_seq (what came before is history); one the client
   * follows already is filled up to it. Returns that fill, if any.
   */
  #learn (view: ConversationView): Promise<void> | null {
    this.#views.merge(view)
    if (this.#followed.size < FOLLOW_CONVS) this.#touch(view.id)
    return this.#streams.reached(view.id, view.last_seq)
  }

  #fetchView (convId: string): void {
    if (this.#fetchingViews.has(convId) || this.#closed) return
    this.#fetchingViews.add(convId)
    this.#http.request<ConversationView>('GET', `/v1/conversations/${convId}`)
      .then(({ body }) => { if (!this.#closed) void this.#learn(body) }, () => {})
      .finally(() => this.#fetchingViews.delete(convId))
  }

  #forget (convId: string): void {
    this.#streams.forget(convId)
    this.#views.delete(convId)
    this.#followed.delete(convId)
  }

  /** Unread (text from others above read_seq, not deleted), when every event above read_seq was seen here. */
  #countUnread (view: ConversationView): number | null {
    if (!this.#streams.sawAllAbove(view.id, view.markers.read_seq, view.last_seq)) return null
    return this.#messages.list(view.id).filter(m => m.seq > view.markers.read_seq && m.sender_id !== this.userId && !m.deleted).length
  }

  /** A conversation the app uses: the connection follows its typing. */
  #touch (convId: string): void {
    if (this.#followed.has(convId)) return
    this.#followed.add(convId)
    void this.#connection.current?.follow(this.#follow())
  }

  #follow (): Follow {
    return { convIds: [...this.#followed], userIds: [...this.#watched] }
  }
}
