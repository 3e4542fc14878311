// GET /v1/sync (DESIGN.md §6): what changed for the caller since a cursor.
import Type from 'typebox'
import { ConvId } from './ids.js'
import { ConversationView } from './rest.js'

export const SYNC_PAGE_DEFAULT = 50
export const SYNC_PAGE_MAX = 100

export const SyncQuery = Type.Object({
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'the `cursor` of the previous answer; none: everything (a full sync)' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: SYNC_PAGE_MAX, default: SYNC_PAGE_DEFAULT, description: 'conversations and removals per page, together' }))
})

export const SyncAnswer = Type.Object({
  conversations: Type.Array(ConversationView, { description: 'conversations that changed, as GET /v1/conversations/:id shows them; ascending id' }),
  removed: Type.Array(ConvId, { description: 'conversations you left or were removed from since the cursor (never in a full sync)' }),
  cursor: Type.String({ description: 'opaque; has_more: ask again with it now; else keep it for the next sync' }),
  has_more: Type.Boolean({ description: 'more changes wait: call again with `cursor` before treating the sync as complete' })
})
export type SyncAnswer = Type.Static<typeof SyncAnswer>
