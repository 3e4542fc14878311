// POST /v1/events/queue, GET /v1/events, DELETE /v1/events/queue/:id (DESIGN.md §6;
// docs/protocol.md "Long-poll"). A poll acknowledges what the client processed (every
// event up to last_event_id), answers at once when later events wait, else holds until
// one arrives or the timeout passes. The answer is built as text from the stored JSON:
// events are never parsed on the way out, except typing and presence, which are checked
// against membership and privacy at delivery, as MQTT's authorizeForward does.
import { randomBytes } from 'node:crypto'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { PluginContext } from '../../broker/plugin.js'
import type { PresenceService } from '../../core/presence/service.js'
import { subjectsFor } from '../../core/presence/visibility.js'
import { inboxTopic, presenceTopic, typingTopic } from '../../core/topics.js'
import {
  Failure, NoContent, POLL_PAGE_MAX, POLL_TIMEOUT_DEFAULT_S, PollAnswer, PollQuery, QueueBody, QueueCreated, QueueFollowBody, QueueFollowed,
  QueueParams, ThreadlineError, type QueueCreated as QueueCreatedBody, type QueueFollowBody as QueueFollowBodyType,
  type QueueFollowed as QueueFollowedBody, type PresenceEntry
} from '../../schemas/index.js'
import type { HeldPolls } from './held-polls.js'
import type { PollingDevices } from './polling-devices.js'
import type { QueuedEvent, QueueStore } from './queue-store.js'
import type { LongPollOptions } from './index.js'

const tags = ['long-poll']
const errorResponses = { '4xx': Failure, 503: Failure } as const
const TYPING_PREFIX = Buffer.from('{"t":"typing"')
const PRESENCE_PREFIX = Buffer.from('{"t":"presence"')

export interface LongPollNode {
  readonly ctx: PluginContext
  readonly options: LongPollOptions
  readonly store: QueueStore
  readonly held: HeldPolls
  readonly devices: PollingDevices
  readonly presence: PresenceService | undefined
  /** set when the node stops: new polls are refused (another node answers them) */
  stopping: boolean
}

const newQueueId = (): string => randomBytes(32).toString('base64url')

/** Store failures (Redis down) are the client's to retry: 503. */
async function stored<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof ThreadlineError) throw err
    throw new ThreadlineError('unavailable', 'event queues are unreachable (Redis does not answer); retry')
  }
}

/** The events `userId` may see now: typing of conversations they are still in, presence their subjects let them see. */
async function visible (node: LongPollNode, userId: string, events: readonly QueuedEvent[]): Promise<QueuedEvent[]> {
  const checks = new Map<number, { convId?: string, subject?: string }>()
  for (const e of events) {
    if (e.payload.subarray(0, TYPING_PREFIX.length).equals(TYPING_PREFIX)) {
      checks.set(e.id, { convId: (JSON.parse(e.payload.toString()) as { conv_id: string }).conv_id })
    } else if (e.payload.subarray(0, PRESENCE_PREFIX.length).equals(PRESENCE_PREFIX)) {
      checks.set(e.id, { subject: (JSON.parse(e.payload.toString()) as { user_id: string }).user_id })
    }
  }
  if (checks.size === 0) return [...events]
  const subjects = [...new Set([...checks.values()].flatMap(c => (c.subject !== undefined ? [c.subject] : [])))]
  const seen = new Set((await subjectsFor(node.ctx.store, userId, subjects)).filter(r => r.visible).map(r => r.id))
  const convs = [...new Set([...checks.values()].flatMap(c => (c.convId !== undefined ? [c.convId] : [])))]
  const member = new Set<string>()
  for (const convId of convs) if (await node.ctx.membership.isMember(convId, userId)) member.add(convId)
  return events.filter((e) => {
    const c = checks.get(e.id)
    if (c === undefined) return true
    return c.convId !== undefined ? member.has(c.convId) : seen.has(c.subject as string)
  })
}

const notFoundError = (queueId: string): ThreadlineError => new ThreadlineError('not_found', `you have no event queue ${queueId}`)

/**
 * The presence of `userIds` now, as GET /v1/presence answers it, for the answer of an open
 * or a change: read after the queue follows presence/<u>, so a change from then on is in
 * the queue too.
 */
async function presenceNow (node: LongPollNode, userId: string, userIds: readonly string[]): Promise<{ presence?: PresenceEntry[] }> {
  if (userIds.length === 0 || node.presence === undefined) return {}
  return { presence: await node.presence.view(userId, userIds) }
}

const expiredError = (): ThreadlineError =>
  new ThreadlineError('queue_expired', 'this event queue expired: sync (GET /v1/sync, history), then open a new one')

/** The topics a queue of `userId` follows for `body`: its inbox, typing of conversations it is in, presence. */
async function followed (node: LongPollNode, userId: string, body: QueueFollowBodyType): Promise<{ topics: string[], userIds: string[] }> {
  const convIds = [...new Set((body.conv_ids ?? []).map(c => c.toLowerCase()))]
  const userIds = [...new Set(body.user_ids ?? [])]
  for (const convId of convIds) {
    if (!await node.ctx.membership.isMember(convId, userId)) {
      throw new ThreadlineError('not_member', `conv_ids: you are not a member of conversation ${convId}`)
    }
  }
  return { topics: [inboxTopic(userId), ...convIds.map(typingTopic), ...userIds.map(presenceTopic)], userIds }
}

function sendEvents (reply: FastifyReply, events: readonly QueuedEvent[], lastEventId: number): FastifyReply {
  const parts = events.map(e => `{"event_id":${e.id},${e.payload.toString('utf8', 1)}`)
  return reply.type('application/json; charset=utf-8').send(`{"events":[${parts.join(',')}],"last_event_id":${lastEventId}}`)
}

export function longPollRoutes (node: LongPollNode): FastifyPluginAsync {
  const { options, store, held, devices } = node
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>()

    app.post('/events/queue', {
      schema: {
        tags,
        summary: 'Open an event queue for this device (one per device: a second ends the first)',
        body: QueueBody,
        response: { 200: QueueCreated, ...errorResponses }
      }
    }, async (request): Promise<QueueCreatedBody> => {
      if (node.stopping) throw new ThreadlineError('unavailable', 'this node is shutting down; retry')
      const userId = request.identity.userId
      const { topics, userIds } = await followed(node, userId, request.body)
      const queueId = newQueueId()
      await stored(() => store.create(queueId, { userId, deviceId: request.body.device_id, topics }, Date.now()))
      request.log.debug({ queue_id: queueId, device_id: request.body.device_id }, 'long-poll queue opened')
      return {
        queue_id: queueId,
        last_event_id: 0,
        queue_timeout_s: Math.round(options.ttlMs / 1000),
        ...await presenceNow(node, userId, userIds)
      }
    })

    app.patch('/events/queue/:id', {
      schema: {
        tags,
        summary: 'Change what a queue follows besides the inbox: it follows exactly conv_ids and user_ids from now on (a list left out: none); its events stay',
        params: QueueParams,
        body: QueueFollowBody,
        response: { 200: QueueFollowed, ...errorResponses }
      }
    }, async (request): Promise<QueueFollowedBody> => {
      if (node.stopping) throw new ThreadlineError('unavailable', 'this node is shutting down; retry')
      const userId = request.identity.userId
      const queueId = request.params.id
      const { topics, userIds } = await followed(node, userId, request.body)
      const result = await stored(() => store.follow(queueId, userId, topics, Date.now()))
      if (result === 'not_found') throw notFoundError(queueId)
      if (result === 'expired') throw expiredError()
      return { queue_id: queueId, ...await presenceNow(node, userId, userIds) }
    })

    app.get('/events', {
      schema: {
        tags,
        summary: 'Long-poll: acknowledge up to last_event_id, get what follows (held up to timeout seconds while nothing does)',
        querystring: PollQuery,
        response: { 200: PollAnswer, ...errorResponses }
      }
    }, async (request, reply) => {
      if (node.stopping) throw new ThreadlineError('unavailable', 'this node is shutting down; poll again (another node answers)')
      const { queue_id: queueId, last_event_id: lastEventId, timeout } = request.query
      const userId = request.identity.userId
      const holdMs = Math.min((timeout ?? POLL_TIMEOUT_DEFAULT_S) * 1000, options.ttlMs / 2)
      const deadline = Date.now() + holdMs
      // armed before the first read: an append between the read and the wait still wakes it
      const waiter = held.arm(queueId)
      // the client hung up: stop holding (and stop counting its device as polling)
      const hungUp = (): void => waiter.close()
      reply.raw.once('close', hungUp)
      let polling = false
      try {
        let cursor = lastEventId
        for (;;) {
          const result = await stored(() => store.poll(queueId, userId, cursor, POLL_PAGE_MAX, Date.now()))
          if (result.kind === 'not_found') throw notFoundError(queueId)
          if (result.kind === 'expired') {
            devices.end(queueId)
            throw expiredError()
          }
          if (result.kind === 'ahead') {
            throw new ThreadlineError('bad_request', `querystring.last_event_id: ${lastEventId} is past the last event this queue gave out (${result.lastEventId})`)
          }
          if (!polling) {
            polling = true
            devices.polling(queueId, userId, request.query.state)
          }
          const events = await visible(node, userId, result.events)
          if (events.length > 0) return sendEvents(reply, events, (events[events.length - 1] as QueuedEvent).id)
          // only events this user may no longer see: acknowledged here, and the wait goes on
          if (result.events.length > 0) {
            cursor = (result.events[result.events.length - 1] as QueuedEvent).id
            continue
          }
          const left = deadline - Date.now()
          const end = left > 0 ? await waiter.wait(left) : 'timeout'
          if (end !== 'wake') {
            if (end === 'timeout') await stored(() => store.touch(queueId, Date.now()))
            return sendEvents(reply, [], cursor)
          }
        }
      } finally {
        reply.raw.off('close', hungUp)
        waiter.cancel()
        if (polling) devices.done(queueId)
      }
    })

    app.delete('/events/queue/:id', {
      schema: {
        tags,
        summary: 'End an event queue now (at sign-out); its id then answers 410',
        params: QueueParams,
        response: { 204: NoContent, ...errorResponses }
      }
    }, async (request, reply) => {
      const queueId = request.params.id
      if (!await stored(() => store.delete(queueId, request.identity.userId))) {
        throw notFoundError(queueId)
      }
      devices.end(queueId)
      return reply.code(204).send(null)
    })
  }
}
