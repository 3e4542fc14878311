// GET /v1/presence?user_ids= (also PRESENCE_SERVICE.view) and PATCH /v1/me/settings (DESIGN.md §6). The settings route
// lives here because a change of presence_visibility must reach the grants of every node
// at once; GET /v1/me, which shows the settings, stays with the profile in sync-api/.
import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { subjectsFor } from '../../core/presence/visibility.js'
import { updateSettings } from '../../core/users.js'
import {
  Failure, MAX_PRESENCE_USERS, PresenceList, PresenceQuery, ThreadlineError, UserSettings, UserSettingsBody, isId,
  type PresenceEntry
} from '../../schemas/index.js'
import type { PresenceNode } from './index.js'

const errorResponses = { '4xx': Failure, 503: Failure } as const

/** `a,b,c` → distinct ids in the order given; 400 for anything else. */
export function parseUserIds (raw: string): string[] {
  const ids = raw.split(',')
  const bad = ids.find(id => !isId(id))
  if (bad !== undefined) throw new ThreadlineError('bad_request', `querystring.user_ids: ${JSON.stringify(bad.slice(0, 80))} is not a user id (1–64 chars of [A-Za-z0-9_.-], comma-separated)`)
  const distinct = [...new Set(ids)]
  if (distinct.length > MAX_PRESENCE_USERS) throw new ThreadlineError('bad_request', `querystring.user_ids: at most ${MAX_PRESENCE_USERS} users per request`)
  return distinct
}

export async function lookup (node: PresenceNode, viewer: string, ids: readonly string[]): Promise<PresenceEntry[]> {
  const rows = new Map((await subjectsFor(node.ctx.store, viewer, ids)).map(r => [r.id, r]))
  const visible = ids.filter(id => rows.get(id)?.visible === true)
  let states
  try {
    states = await node.tracker.states(visible)
  } catch {
    throw new ThreadlineError('unavailable', 'presence is unavailable (Redis does not answer); retry')
  }
  return ids.map((id): PresenceEntry => {
    const row = rows.get(id)
    if (row === undefined || !row.visible) return { user_id: id, state: 'unknown' }
    const state = states.get(id)
    if (state !== undefined) return { user_id: id, state }
    const stored = row.last_seen === null ? undefined : new Date(row.last_seen).getTime()
    const waiting = node.lastSeen.waiting(id)
    const seen = Math.max(stored ?? -1, waiting ?? -1)
    return seen < 0 ? { user_id: id, state: 'offline' } : { user_id: id, state: 'offline', last_seen: new Date(seen).toISOString() }
  })
}

export function presenceRoutes (node: PresenceNode): FastifyPluginAsync {
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>()

    app.get('/presence', {
      schema: {
        tags: ['presence'],
        summary: 'Presence of up to 100 users, as their privacy settings let you see it',
        querystring: PresenceQuery,
        response: { 200: PresenceList, ...errorResponses }
      }
    }, async (request) => {
      const ids = parseUserIds(request.query.user_ids)
      return { presence: await lookup(node, request.identity.userId, ids) }
    })

    app.patch('/me/settings', {
      schema: {
        tags: ['me'],
        summary: 'Change your settings (presence_visibility)',
        body: UserSettingsBody,
        response: { 200: UserSettings, ...errorResponses }
      }
    }, async (request) => {
      const userId = request.identity.userId
      const settings = await updateSettings(node.ctx.store, userId, request.body)
      // the auth hook upserted the row; only a wiped database gets here
      if (settings === null) throw new ThreadlineError('not_found', 'your user row is missing; reconnect')
      // answered once this node's viewers are re-checked; the others follow within moments
      if (request.body.presence_visibility !== undefined) await node.visibilityChanged(userId)
      return settings
    })
  }
}
