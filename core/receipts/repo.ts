// The SQL of receipts (DESIGN.md §5 members.delivered_seq / read_seq). One statement per
// coalesced write, the same text for PostgreSQL and PGlite.
import type { ReceiptMarker } from '../../schemas/index.js'
import type { Queryable } from '../store.js'
import type { Markers } from './markers.js'

/**
 * How far back a write looks for the senders whose messages changed status: a member who
 * jumps from 0 to seq 100,000 makes the write read at most this many events. Senders of
 * older messages still get the summary on conv/<c>/receipts; their inbox doesn't.
 */
export const SENDER_LOOKBACK_SEQS = 1000

export interface MarkersWritten {
  /** the members whose markers grew, with the values now stored */
  readonly changed: readonly ReceiptMarker[]
  /** of those, the members whose read_seq grew (their unread count changed) */
  readonly readGrew: ReadonlySet<string>
  /** senders (still members) of text messages whose status changed, from the events the markers passed */
  readonly senders: readonly string[]
}

// GREATEST on both columns: two nodes writing one conversation's markers at once never
// move one backwards. Under READ COMMITTED a row another transaction changed meanwhile is
// re-read (EvalPlanQual) and its newer values win in GREATEST and in the "grows" test.
// `o` is the same row as the statement's snapshot saw it, i.e. the value before this write
// (or older, after such a re-read: then the senders' range only gets wider, never
// narrower). The senders come from the union of every member's passed range, in the same
// statement: a status change of message s concerns its sender only (while a member).
const WRITE_SQL = `
WITH x AS (
  SELECT * FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS x(user_id, d, r)
), upd AS (
  UPDATE members m
     SET delivered_seq = GREATEST(m.delivered_seq, x.d), read_seq = GREATEST(m.read_seq, x.r)
    FROM x, members o
   WHERE m.conv_id = $1 AND m.user_id = x.user_id
     AND o.conv_id = m.conv_id AND o.user_id = m.user_id
     AND (x.d > m.delivered_seq OR x.r > m.read_seq)
  RETURNING m.user_id, m.delivered_seq, m.read_seq, o.delivered_seq AS old_delivered, o.read_seq AS old_read
), span AS (
  SELECT min(CASE WHEN read_seq > old_read THEN old_read ELSE old_delivered END) AS lo, max(delivered_seq) AS hi FROM upd
)
SELECT u.user_id, u.delivered_seq, u.read_seq, u.read_seq > u.old_read AS read_grew, NULL AS sender_id FROM upd u
UNION ALL
SELECT NULL, NULL, NULL, NULL, s.sender_id FROM (
  SELECT DISTINCT e.sender_id FROM span, events e
   WHERE e.conv_id = $1 AND e.type = 'text'
     AND e.seq > GREATEST(span.lo, span.hi - $5) AND e.seq <= span.hi
) s JOIN members sm ON sm.conv_id = $1 AND sm.user_id = s.sender_id`

interface WriteRow {
  user_id: string | null
  delivered_seq: number | null
  read_seq: number | null
  read_grew: boolean | null
  sender_id: string | null
}

/**
 * Writes the coalesced markers of one conversation in one statement (max wins). Only
 * members' rows change: markers of a user who is not (or no longer) a member are ignored.
 */
export async function writeMarkers (q: Queryable, convId: string, markers: ReadonlyMap<string, Markers>): Promise<MarkersWritten> {
  const users: string[] = []
  const delivered: number[] = []
  const read: number[] = []
  for (const [user, m] of markers) {
    users.push(user)
    delivered.push(m.delivered)
    read.push(m.read)
  }
  const rows = await q.query<WriteRow>(WRITE_SQL, [convId, users, delivered, read, SENDER_LOOKBACK_SEQS])
  const changed: ReceiptMarker[] = []
  const readGrew = new Set<string>()
  const senders: string[] = []
  for (const r of rows) {
    if (r.sender_id !== null) {
      senders.push(r.sender_id)
      continue
    }
    const userId = r.user_id as string
    changed.push({ user_id: userId, delivered_seq: r.delivered_seq as number, read_seq: r.read_seq as number })
    if (r.read_grew === true) readGrew.add(userId)
  }
  changed.sort((a, b) => (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0))
  return { changed, readGrew, senders }
}

export interface MemberMarkers extends Markers {
  /** the conversation's last seq */
  readonly lastSeq: number
}

/** A member's stored markers and the conversation's last seq; undefined when not a member (or no such conversation). */
export async function memberMarkers (q: Queryable, convId: string, userId: string): Promise<MemberMarkers | undefined> {
  const rows = await q.query<{ delivered_seq: number, read_seq: number, last_seq: number }>(
    `SELECT m.delivered_seq, m.read_seq, c.last_seq FROM members m JOIN conversations c ON c.id = m.conv_id
     WHERE m.conv_id = $1 AND m.user_id = $2`, [convId, userId])
  const r = rows[0]
  return r === undefined ? undefined : { delivered: r.delivered_seq, read: r.read_seq, lastSeq: r.last_seq }
}

/** The conversation's last seq; undefined when there is no such conversation. */
export async function lastSeqOf (q: Queryable, convId: string): Promise<number | undefined> {
  const rows = await q.query<{ last_seq: number }>('SELECT last_seq FROM conversations WHERE id = $1', [convId])
  return rows[0]?.last_seq
}
