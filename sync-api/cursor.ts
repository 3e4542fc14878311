// The opaque cursor of GET /v1/conversations: a list position, base64url-wrapped so
// clients treat it as a token rather than something to build themselves.
import { ThreadlineError, isUuid } from '../schemas/index.js'
import type { ListPosition } from '../core/conversations/views.js'

export function encodeCursor (p: ListPosition): string {
  return Buffer.from(`${p.activityUs}.${p.id}`).toString('base64url')
}

export function decodeCursor (cursor: string): ListPosition {
  const [us, id, ...rest] = Buffer.from(cursor, 'base64url').toString().split('.')
  const activityUs = Number(us)
  if (rest.length > 0 || id === undefined || !isUuid(id) || !/^\d{1,17}$/.test(us ?? '') || !Number.isSafeInteger(activityUs)) {
    throw new ThreadlineError('bad_request', 'querystring.cursor is not a cursor this server gave out')
  }
  return { activityUs, id: id.toLowerCase() }
}
