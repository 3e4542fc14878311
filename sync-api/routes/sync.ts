// GET /v1/sync: multi-device catch-up (core/sync/). This plugin also prunes the removals
// a sync reports once they are older than THREADLINE_SYNC_RETENTION_S, on every node
// (a prune is one idempotent statement; two nodes pruning at once do no harm).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { SyncAnswer, SyncQuery, SYNC_PAGE_DEFAULT } from '../../schemas/index.js'
import { decodeSyncCursor } from '../../core/sync/cursor.js'
import { syncPage } from '../../core/sync/changes.js'
import { pruneRemovals } from '../../core/sync/state.js'
import { errorResponses, type RouteOptions } from './common.js'

const PRUNE_INTERVAL_MS = 3_600_000

export const syncRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, { deps }) => {
  const prune = (): void => {
    pruneRemovals(deps.store, deps.config.syncRetentionS).then((n) => {
      if (n > 0) app.log.info({ pruned: n }, 'sync removals past their retention pruned')
    }, (err: unknown) => app.log.warn({ err }, 'sync removals not pruned; trying again in an hour'))
  }
  const timer = setInterval(prune, PRUNE_INTERVAL_MS).unref()
  app.addHook('onClose', async () => { clearInterval(timer) })

  app.get('/sync', {
    schema: {
      tags: ['sync'],
      summary: 'What changed for you since `cursor` (none: everything): conversations with last_seq, your markers and unread count; conversations you left; the next cursor',
      querystring: SyncQuery,
      response: { 200: SyncAnswer, ...errorResponses }
    }
  }, async (request) => {
    const cursor = request.query.cursor === undefined ? null : decodeSyncCursor(request.query.cursor)
    return await syncPage(deps.store, request.identity.userId, cursor, request.query.limit ?? SYNC_PAGE_DEFAULT)
  })
}
