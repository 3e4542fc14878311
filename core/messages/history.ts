// Reading a conversation's stored events for the history API.
import type { Queryable } from '../store.js'
import { EVENT_COLUMNS, type EventRow } from './envelopes.js'

export interface PageBounds {
  /** events above this seq, oldest first */
  afterSeq?: number
  /** events below this seq, newest first */
  beforeSeq?: number
  limit: number
}

/**
 * One page in ascending seq. With after_seq the page is the oldest `limit` events above
 * it (has_more: newer ones exist); otherwise the newest `limit` below before_seq, or
 * below the end (has_more: older ones exist). Both bounds together: the oldest `limit`
 * strictly between them.
 */
export async function eventPage (q: Queryable, convId: string, bounds: PageBounds): Promise<{ rows: EventRow[], hasMore: boolean }> {
  const forward = bounds.afterSeq !== undefined
  const rows = await q.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events e
     WHERE e.conv_id = $1 AND ($2::bigint IS NULL OR e.seq > $2::bigint) AND ($3::bigint IS NULL OR e.seq < $3::bigint)
     ORDER BY e.seq ${forward ? 'ASC' : 'DESC'} LIMIT $4`,
    [convId, bounds.afterSeq ?? null, bounds.beforeSeq ?? null, bounds.limit + 1])
  const hasMore = rows.length > bounds.limit
  const page = rows.slice(0, bounds.limit)
  if (!forward) page.reverse()
  return { rows: page, hasMore }
}

/** Every edit, delete and reaction aimed at these messages, wherever it lies, in seq order. */
export async function eventsTargeting (q: Queryable, convId: string, seqs: readonly number[]): Promise<EventRow[]> {
  if (seqs.length === 0) return []
  return await q.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events e WHERE e.conv_id = $1 AND e.target_seq = ANY($2::bigint[]) ORDER BY e.seq`,
    [convId, seqs])
}
