// The opaque cursor of GET /v1/sync. A finished sync hands out `since`: the oldest
// transaction still running when it read (pg_snapshot_xmin), so the next sync asks for
// every row stamped by that transaction or a later one (stamp.ts) and skips none that
// committed after the read, whenever it began. A sync answered in pages keeps `since`
// and `upto` (the xmin of its first page, which the finished sync hands out) and the
// last conversation id answered. `epoch` ties the cursor to one database.
import { ThreadlineError, isUuid } from '../../schemas/index.js'

export interface SyncCursor {
  /** sync_state.epoch of the database that gave the cursor out */
  readonly epoch: string
  /** xid8 as decimal text: report rows stamped at or above it; null in a full sync */
  readonly since: string | null
  /** while paging: the `since` of the cursor the finished sync hands out */
  readonly upto: string | null
  /** while paging: the last conversation id answered so far */
  readonly after: string | null
}

const VERSION = 's1'
const EPOCH = /^[0-9a-f]{16}$/
const XID = /^(0|[1-9]\d{0,19})$/
const XID_MAX = 2n ** 64n - 1n

function bad (): ThreadlineError {
  return new ThreadlineError('bad_request', 'querystring.cursor is not a cursor this server gave out')
}

export function encodeSyncCursor (c: SyncCursor): string {
  return Buffer.from([VERSION, c.epoch, c.since ?? '', c.upto ?? '', c.after ?? ''].join('.')).toString('base64url')
}

const xidOrNull = (s: string | undefined): string | null => {
  if (s === undefined || s === '') return null
  if (!XID.test(s) || BigInt(s) > XID_MAX) throw bad()
  return s
}

export function decodeSyncCursor (text: string): SyncCursor {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw bad()
  const parts = Buffer.from(text, 'base64url').toString().split('.')
  if (parts.length !== 5 || parts[0] !== VERSION || !EPOCH.test(parts[1] ?? '')) throw bad()
  const since = xidOrNull(parts[2])
  const upto = xidOrNull(parts[3])
  const after = parts[4] === '' ? null : (parts[4] as string)
  if (after !== null && !isUuid(after)) throw bad()
  // a finished sync's cursor has neither; a page's has both, and its since is no later
  if ((upto === null) !== (after === null)) throw bad()
  if (upto === null && since === null) throw bad()
  if (upto !== null && since !== null && BigInt(since) > BigInt(upto)) throw bad()
  return { epoch: parts[1] as string, since, upto, after: after?.toLowerCase() ?? null }
}
