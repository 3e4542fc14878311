// The opaque cursor of GET /v1/sync. A finished sync hands out `since`: the snapshot its
// read saw (pg_current_snapshot(): xmin, xmax and the transactions in progress), so the
// next sync asks for exactly the rows stamped (stamp.ts) by a transaction that snapshot
// did not see — one in progress then or begun after — and skips none that committed after
// the read, whenever it began, without reporting again what the read saw (a long
// transaction elsewhere in the cluster holds nothing back). A sync answered in pages
// keeps `since` and `upto` (the snapshot of its first page, which the finished sync hands
// out) and the last conversation id answered. `epoch` ties the cursor to one database.
import { ThreadlineError, isUuid } from '../../schemas/index.js'

export interface SyncCursor {
  /** sync_state.epoch of the database that gave the cursor out */
  readonly epoch: string
  /** a pg_snapshot as text (xmin:xmax:xip,…): report rows it did not see; null in a full sync */
  readonly since: string | null
  /** while paging: the `since` of the cursor the finished sync hands out */
  readonly upto: string | null
  /** while paging: the last conversation id answered so far */
  readonly after: string | null
}

const VERSION = 's2'
const EPOCH = /^[0-9a-f]{16}$/
const XID = /^(0|[1-9]\d{0,19})$/
const XID_MAX = 2n ** 64n - 1n
/**
 * Transactions in progress a cursor may list. A snapshot with more is handed out
 * coarsened to xmin:xmin: (everything from its oldest running transaction on counts as
 * unseen): correct, and a sync may then repeat conversations.
 */
export const MAX_CURSOR_XIP = 64

/** The oldest transaction a snapshot may not have seen. */
export const snapshotXmin = (snapshot: string): bigint => BigInt(snapshot.slice(0, snapshot.indexOf(':')))
export const snapshotXmax = (snapshot: string): bigint => BigInt(snapshot.split(':')[1] as string)
/** The transactions a snapshot saw in progress, as decimal text. */
export const snapshotXip = (snapshot: string): string[] => {
  const xip = snapshot.split(':')[2] ?? ''
  return xip === '' ? [] : xip.split(',')
}

/** The snapshot as a cursor holds it: as PostgreSQL printed it, or coarsened (MAX_CURSOR_XIP). */
export function cursorSnapshot (snapshot: string): string {
  const xip = snapshot.split(':')[2] ?? ''
  if (xip === '' || xip.split(',').length <= MAX_CURSOR_XIP) return snapshot
  const xmin = String(snapshotXmin(snapshot))
  return `${xmin}:${xmin}:`
}

function bad (): ThreadlineError {
  return new ThreadlineError('bad_request', 'querystring.cursor is not a cursor this server gave out')
}

export function encodeSyncCursor (c: SyncCursor): string {
  return Buffer.from([VERSION, c.epoch, c.since ?? '', c.upto ?? '', c.after ?? ''].join('.')).toString('base64url')
}

const xid = (s: string): bigint => {
  if (!XID.test(s) || BigInt(s) > XID_MAX) throw bad()
  return BigInt(s)
}

/** pg_snapshot's text form, checked: xmin <= each xip < xmax, at most MAX_CURSOR_XIP of them. */
const snapshotOrNull = (s: string | undefined): string | null => {
  if (s === undefined || s === '') return null
  const parts = s.split(':')
  if (parts.length !== 3) throw bad()
  const xmin = xid(parts[0] as string)
  const xmax = xid(parts[1] as string)
  const xip = parts[2] === '' ? [] : (parts[2] as string).split(',').map(xid)
  if (xmin > xmax || xip.length > MAX_CURSOR_XIP || xip.some(x => x < xmin || x >= xmax)) throw bad()
  return s
}

export function decodeSyncCursor (text: string): SyncCursor {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw bad()
  const parts = Buffer.from(text, 'base64url').toString().split('.')
  if (parts.length !== 5 || parts[0] !== VERSION || !EPOCH.test(parts[1] ?? '')) throw bad()
  const since = snapshotOrNull(parts[2])
  const upto = snapshotOrNull(parts[3])
  const after = parts[4] === '' ? null : (parts[4] as string)
  if (after !== null && !isUuid(after)) throw bad()
  // a finished sync's cursor has neither; a page's has both, and its since is no later
  if ((upto === null) !== (after === null)) throw bad()
  if (upto === null && since === null) throw bad()
  if (upto !== null && since !== null && snapshotXmin(since) > snapshotXmin(upto)) throw bad()
  return { epoch: parts[1] as string, since, upto, after: after?.toLowerCase() ?? null }
}
