// A long-poll client over real HTTP sockets (fetch), as an app without MQTT would be:
// it opens a queue, polls with the last id it processed, and repeats a poll whose answer
// it lost with the same id.
import type { Threadline } from '../../broker/server.js'
import { LONGPOLL_STATS, type LongPollStats } from '../../core/longpoll/stats.js'
import { token } from './node.js'
import { waitFor } from './wait.js'

export type { LongPollStats } from '../../core/longpoll/stats.js'

/** The node's live queues, their events, the polls it holds and the polling devices it counts. */
export async function longPollStats (node: Threadline): Promise<LongPollStats> {
  return await node.services.get(LONGPOLL_STATS)()
}

/** Resolves once the node's long-poll counters satisfy `condition` (they announce no change by an event). */
export async function untilStats (node: Threadline, condition: (s: LongPollStats) => boolean, what: string, ms?: number): Promise<void> {
  await waitFor(async () => condition(await longPollStats(node)), what, ms)
}

export interface PollAnswer {
  events: Array<Record<string, unknown> & { event_id: number, t: string }>
  last_event_id: number
}

export interface HttpAnswer<T = unknown> { status: number, body: T, headers: Headers }

export async function http<T = unknown> (node: Pick<Threadline, 'httpPort'>, bearer: string | null, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<HttpAnswer<T>> {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}${path}`, {
    method,
    headers: {
      ...(bearer !== null ? { authorization: `Bearer ${bearer}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {})
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    ...(signal !== undefined ? { signal } : {})
  })
  const text = await res.text()
  return { status: res.status, body: (text === '' ? null : JSON.parse(text)) as T, headers: res.headers }
}

export interface QueueOptions { device?: string, conv_ids?: string[], user_ids?: string[] }

export class LongPollClient {
  readonly bearer: string
  queueId = ''
  lastEventId = 0
  node: Pick<Threadline, 'httpPort'>

  constructor (node: Threadline, readonly userId: string) {
    this.node = node
    this.bearer = token(node, userId)
  }

  async open (opts: QueueOptions = {}): Promise<HttpAnswer<{ queue_id: string, last_event_id: number, queue_timeout_s: number, presence?: unknown[] }>> {
    const res = await http<{ queue_id: string, last_event_id: number, queue_timeout_s: number }>(this.node, this.bearer, 'POST', '/v1/events/queue', {
      device_id: opts.device ?? 'browser',
      ...(opts.conv_ids !== undefined ? { conv_ids: opts.conv_ids } : {}),
      ...(opts.user_ids !== undefined ? { user_ids: opts.user_ids } : {})
    })
    if (res.status !== 200) throw new Error(`POST /v1/events/queue: ${res.status} ${JSON.stringify(res.body)}`)
    this.queueId = res.body.queue_id
    this.lastEventId = res.body.last_event_id
    return res
  }

  /** One poll from where the client is; does not move the client on. */
  async request (timeoutS = 10, extra = '', signal?: AbortSignal): Promise<HttpAnswer<PollAnswer>> {
    return await http<PollAnswer>(this.node, this.bearer, 'GET',
      `/v1/events?queue_id=${this.queueId}&last_event_id=${this.lastEventId}&timeout=${timeoutS}${extra}`, undefined, signal)
  }

  /** Polls until an answer with events (or a timeout's empty one), and processes it. */
  async poll (timeoutS = 10): Promise<PollAnswer['events']> {
    const res = await this.request(timeoutS)
    if (res.status !== 200) throw new Error(`GET /v1/events: ${res.status} ${JSON.stringify(res.body)}`)
    this.lastEventId = res.body.last_event_id
    return res.body.events
  }

  /** Polls until `n` events arrived in all, or `ms` passed. */
  async collect (n: number, ms = 10_000): Promise<PollAnswer['events']> {
    const out: PollAnswer['events'] = []
    const deadline = Date.now() + ms
    while (out.length < n) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`long-poll: ${out.length} of ${n} events after ${ms} ms: ${JSON.stringify(out).slice(0, 500)}`)
      out.push(...await this.poll(Math.max(1, Math.min(10, Math.ceil(left / 1000)))))
    }
    return out
  }
}
