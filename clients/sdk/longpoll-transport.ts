// The long-poll transport: an event queue on the server (POST /v1/events/queue) read by
// holding GET /v1/events, and plain HTTP for everything a client sends. The queue carries
// what the MQTT inbox carries plus typing and presence, so the client above sees the same
// envelopes either way (the queue's event_id is stripped: it means nothing elsewhere).
import type { PresenceEntry, QueueCreated, QueueFollowed } from '../../schemas/index.js'
import type { HttpApi } from './http.js'
import { ThreadlineApiError } from './http.js'
import type { Timers } from './timers.js'
import { AuthRefused, type Follow, type Inbound, type SendAck, type SendPayload, type Transport, type TransportSink } from './transport.js'

export interface LongPollParams {
  deviceId: string
  pollTimeoutS: number
  follow: Follow
  /** delay before the n-th retry of a poll that failed on the network or a 503 */
  retryDelay: (attempt: number) => number
  /** abandons opening the queue (the client is closing) */
  signal: AbortSignal
}

interface PollAnswer { events: Array<Inbound & { event_id: number }>, last_event_id: number }

/**
 * A queue holds typing for at most this many conversations and presence for as many users
 * (MAX_QUEUE_CONVS, MAX_PRESENCE_USERS in schemas/: values from there would bundle TypeBox).
 */
const MAX_FOLLOW = 100
/** Polls that fail in a row on the network before the transport gives up (the manager then reconnects). */
const MAX_POLL_FAILURES = 3

export class LongPollTransport implements Transport {
  readonly kind = 'longpoll'
  readonly resumed = false
  readonly #http: HttpApi
  readonly #timers: Timers
  readonly #sink: TransportSink
  readonly #params: LongPollParams
  #queueId = ''
  #lastEventId = 0
  #state: 'active' | 'away' = 'active'
  #follow: Follow
  #poll: AbortController | null = null
  #refollow: ReturnType<Timers['set']> | undefined
  /** resolves once the queue that follows what follow() asked for is open */
  #refollowed: Promise<void> | null = null
  #refollowDone = (): void => {}
  #closed = false

  private constructor (http: HttpApi, timers: Timers, sink: TransportSink, params: LongPollParams) {
    this.#http = http
    this.#timers = timers
    this.#sink = sink
    this.#params = params
    this.#follow = params.follow
  }

  /** Opens a queue; the poll loop runs until close() or a failure it reports as down(). */
  static async open (http: HttpApi, timers: Timers, params: LongPollParams, sink: TransportSink): Promise<LongPollTransport> {
    const transport = new LongPollTransport(http, timers, sink, params)
    try {
      await transport.#openQueue(params.signal)
    } catch (err) {
      throw err instanceof ThreadlineApiError && err.status === 401 ? new AuthRefused(err.message, 401) : err
    }
    void transport.#loop()
    return transport
  }

  async #openQueue (signal?: AbortSignal): Promise<void> {
    const open = (convIds: readonly string[]): Promise<{ body: QueueCreated }> => this.#http.request<QueueCreated>('POST', '/v1/events/queue', {
      body: { device_id: this.#params.deviceId, conv_ids: convIds.slice(0, MAX_FOLLOW), user_ids: this.#follow.userIds.slice(0, MAX_FOLLOW) },
      ...(signal !== undefined ? { signal } : {})
    })
    let body: QueueCreated
    try {
      ({ body } = await open(this.#follow.convIds))
    } catch (err) {
      // a conversation left while away refuses the whole queue: open it without typing,
      // and the catch-up that follows drops what was left
      if (!(err instanceof ThreadlineApiError) || err.code !== 'not_member') throw err
      this.#follow = { convIds: [], userIds: this.#follow.userIds }
      ;({ body } = await open([]))
    }
    this.#queueId = body.queue_id
    this.#lastEventId = body.last_event_id
    this.#presenceNow(body.presence)
  }

  /** The presence a queue's open or change answered with, as if it had come through the queue. */
  #presenceNow (entries: readonly PresenceEntry[] = []): void {
    for (const p of entries) this.#sink.envelope({ ...p, t: 'presence' })
  }

  async #refollowQueue (): Promise<void> {
    try {
      const { body } = await this.#http.request<QueueFollowed>('PATCH', `/v1/events/queue/${this.#queueId}`, {
        body: { conv_ids: this.#follow.convIds.slice(0, MAX_FOLLOW), user_ids: this.#follow.userIds.slice(0, MAX_FOLLOW) }
      })
      this.#presenceNow(body.presence)
      return
    } catch (err) {
      // the queue ended meanwhile (404, 410), or a conversation was left (403): a new
      // queue (#openQueue copes with the latter), then the client catches up
      if (!(err instanceof ThreadlineApiError) || ![403, 404, 410].includes(err.status)) throw err
    }
    await this.#openQueue()
    this.#poll?.abort()
    this.#sink.reopened()
  }

  async #loop (): Promise<void> {
    let failures = 0
    while (!this.#closed) {
      const poll = new AbortController()
      this.#poll = poll
      const queueId = this.#queueId
      try {
        const { body } = await this.#http.request<PollAnswer>('GET', '/v1/events', {
          query: { queue_id: queueId, last_event_id: this.#lastEventId, timeout: this.#params.pollTimeoutS, state: this.#state },
          signal: poll.signal
        })
        failures = 0
        if (this.#closed || queueId !== this.#queueId) continue
        for (const { event_id: _id, ...envelope } of body.events) this.#sink.envelope(envelope as Inbound)
        this.#lastEventId = body.last_event_id
      } catch (err) {
        if (this.#closed) return
        if (poll.signal.aborted) continue // a new state or a new queue: poll again at once
        if (err instanceof ThreadlineApiError && (err.status === 410 || err.status === 404)) {
          // expired or gone: a new queue, then the client catches up on what fell between
          try {
            await this.#openQueue()
            this.#sink.reopened()
            continue
          } catch (openErr) {
            return this.#fail(openErr as Error)
          }
        }
        if (err instanceof ThreadlineApiError && err.retryable && ++failures < MAX_POLL_FAILURES) {
          await this.#timers.sleep(this.#params.retryDelay(failures - 1))
          continue
        }
        return this.#fail(err as Error)
      } finally {
        if (this.#poll === poll) this.#poll = null
      }
    }
  }

  #fail (err: Error): void {
    if (this.#closed) return
    this.#closed = true
    this.#sink.down(err)
  }

  async send (convId: string, payload: SendPayload): Promise<SendAck | null> {
    const { body } = await this.#http.request<{ seq: number, ts: string }>('POST', `/v1/conversations/${convId}/messages`, { body: payload })
    return { seq: body.seq, ts: body.ts }
  }

  async receipt (convId: string, status: 'delivered' | 'read', seq: number): Promise<void> {
    await this.#http.request('POST', `/v1/conversations/${convId}/receipts`, { body: { status, seq } })
  }

  async typing (convId: string, typing: boolean): Promise<void> {
    await this.#http.request('POST', `/v1/conversations/${convId}/typing`, { body: { typing } })
  }

  presence (state: 'active' | 'away'): void {
    if (state === this.#state) return
    this.#state = state
    this.#poll?.abort() // the state rides on the poll: poll again now rather than after the held one
  }

  follow (follow: Follow): Promise<void> {
    const known = (a: readonly string[], b: readonly string[]): boolean => b.every(x => a.includes(x))
    if (known(this.#follow.convIds, follow.convIds) && known(this.#follow.userIds, follow.userIds)) return this.#refollowed ?? Promise.resolve()
    this.#follow = { convIds: [...follow.convIds], userIds: [...follow.userIds] }
    // The queue is told what it follows now (PATCH): what waits in it stays. A burst of
    // follow() calls makes one request.
    this.#timers.clear(this.#refollow)
    this.#refollowed ??= new Promise<void>(resolve => { this.#refollowDone = resolve })
    this.#refollow = this.#timers.set(() => {
      this.#refollow = undefined
      const done = this.#refollowDone
      this.#refollowed = null
      if (this.#closed) return done()
      this.#refollowQueue().catch((err: Error) => this.#fail(err)).finally(done)
    }, 50)
    return this.#refollowed
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#timers.clear(this.#refollow)
    this.#refollowDone()
    this.#poll?.abort()
    // the device stops counting as connected now rather than after the linger; a server
    // that does not answer is not waited for
    const abort = new AbortController()
    const timer = this.#timers.set(() => abort.abort(), 2000)
    await this.#http.request('DELETE', `/v1/events/queue/${this.#queueId}`, { signal: abort.signal }).catch(() => {})
    this.#timers.clear(timer)
  }
}
