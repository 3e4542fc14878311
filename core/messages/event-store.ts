// The SQL of one group-commit batch. Everything runs in the caller's transaction:
// conversations are locked (sorted, so two nodes never deadlock), then membership,
// idempotency and targets are read for the whole batch at once, seqs are assigned in
// arrival order, and all new events go in with one INSERT. A conversation's row lock
// is what keeps seqs gapless and ordered across broker nodes.
import type { Queryable } from '../store.js'
import { ThreadlineError, type SendRequest } from '../../schemas/index.js'
import { EVENT_COLUMNS, bodyOf, type EventRow } from './envelopes.js'
import { SYNC_STAMP } from '../sync/stamp.js'

export interface PendingSend {
  convId: string
  senderId: string
  req: SendRequest
  /** see SendService.send */
  lane?: object | undefined
}

export type CommitResult =
  | { kind: 'stored', row: EventRow, members: readonly string[] }
  | { kind: 'duplicate', row: EventRow }
  | { kind: 'rejected', error: ThreadlineError }

interface Target { type: string, sender_id: string, deleted: boolean }

const key = (...parts: Array<string | number>): string => parts.join('\u0000')

export async function commitBatch (tx: Queryable, items: readonly PendingSend[]): Promise<CommitResult[]> {
  const convIds = [...new Set(items.map(i => i.convId))].sort()
  // one round trip: lock the conversations and read their members (the sender check
  // and the fan-out list, consistent with this commit)
  const convRows = await tx.query<{ id: string, last_seq: number, members: string[] }>(
    `SELECT c.id::text AS id, c.last_seq,
            ARRAY(SELECT m.user_id FROM members m WHERE m.conv_id = c.id) AS members
     FROM conversations c WHERE c.id = ANY($1::uuid[]) ORDER BY c.id FOR UPDATE OF c`, [convIds])
  const lastSeq = new Map(convRows.map(r => [r.id, r.last_seq]))
  const members = new Map(convRows.map(r => [r.id, r.members]))

  const existing = new Map<string, EventRow>()
  const targets = new Map<string, Target>()
  if (convRows.length > 0) {
    const ours = items.filter(i => lastSeq.has(i.convId))
    for (const row of await tx.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events e
       JOIN unnest($1::uuid[], $2::text[], $3::text[]) AS k(conv_id, sender_id, client_msg_id)
         ON e.conv_id = k.conv_id AND e.sender_id = k.sender_id AND e.client_msg_id = k.client_msg_id`,
      [ours.map(i => i.convId), ours.map(i => i.senderId), ours.map(i => i.req.client_msg_id)])) {
      existing.set(key(row.conv_id, row.sender_id, row.client_msg_id), row)
    }
    const aimed = ours.filter(i => i.req.type !== 'text')
    if (aimed.length > 0) {
      for (const t of await tx.query<Target & { conv_id: string, seq: number }>(
        `SELECT t.conv_id::text AS conv_id, t.seq, t.type, t.sender_id,
                EXISTS (SELECT 1 FROM events d WHERE d.conv_id = t.conv_id AND d.target_seq = t.seq AND d.type = 'delete') AS deleted
         FROM events t JOIN unnest($1::uuid[], $2::bigint[]) AS k(conv_id, seq) ON t.conv_id = k.conv_id AND t.seq = k.seq`,
        [aimed.map(i => i.convId), aimed.map(i => (i.req as { target_seq: number }).target_seq)])) {
        targets.set(key(t.conv_id, t.seq), t)
      }
    }
  }

  const results: CommitResult[] = []
  const inserts: Array<{ item: PendingSend, row: EventRow }> = []
  // sends of this very batch, for a retry that arrives while the original is uncommitted
  const batchRows = new Map<string, EventRow>()

  for (const item of items) {
    const { convId, senderId, req } = item
    const idem = key(convId, senderId, req.client_msg_id)
    const prior = existing.get(idem) ?? batchRows.get(idem)
    if (prior) {
      results.push({ kind: 'duplicate', row: prior })
      continue
    }
    const error = rejection(item, lastSeq.get(convId), members.get(convId), targets)
    if (error) {
      results.push({ kind: 'rejected', error })
      continue
    }
    const seq = (lastSeq.get(convId) as number) + 1
    lastSeq.set(convId, seq)
    if (req.type === 'delete') {
      const t = targets.get(key(convId, req.target_seq))
      if (t) t.deleted = true
    }
    // created_at is filled in below, once the INSERT has answered
    const row: EventRow = {
      conv_id: convId,
      seq,
      sender_id: senderId,
      client_msg_id: req.client_msg_id,
      type: req.type,
      body: bodyOf(req),
      target_seq: 'target_seq' in req ? req.target_seq : null,
      created_at: ''
    }
    inserts.push({ item, row })
    batchRows.set(idem, row)
    results.push({ kind: 'stored', row, members: members.get(convId) ?? [] })
  }
  if (inserts.length === 0) return results

  const rows = inserts.map(i => i.row)
  const touched = [...new Set(rows.map(r => r.conv_id))]
  // one round trip: the events and the conversations' new last_seq (stamped for
  // GET /v1/sync in the same UPDATE: no extra write)
  const inserted = await tx.query<{ created_at: Date }>(
    `WITH bumped AS (
       UPDATE conversations c SET last_seq = v.last_seq, last_event_at = now(), ${SYNC_STAMP}
       FROM unnest($8::uuid[], $9::bigint[]) AS v(id, last_seq) WHERE c.id = v.id
       RETURNING 1
     )
     INSERT INTO events (conv_id, seq, sender_id, client_msg_id, type, body, target_seq)
     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::bigint[])
     RETURNING created_at`,
    [rows.map(r => r.conv_id), rows.map(r => r.seq), rows.map(r => r.sender_id), rows.map(r => r.client_msg_id),
      rows.map(r => r.type), rows.map(r => JSON.stringify(r.body)), rows.map(r => r.target_seq),
      touched, touched.map(id => lastSeq.get(id))])
  const createdAt = inserted[0]?.created_at ?? new Date()
  for (const row of rows) row.created_at = createdAt
  return results
}

function rejection (item: PendingSend, lastSeq: number | undefined, members: readonly string[] | undefined,
  targets: ReadonlyMap<string, Target>): ThreadlineError | null {
  const { convId, senderId, req } = item
  // an unknown conversation answers like one the sender is not in: no existence oracle
  if (lastSeq === undefined || !(members ?? []).includes(senderId)) {
    return new ThreadlineError('not_member', `you are not a member of conversation ${convId}`)
  }
  if (req.type === 'text') {
    if (req.reply_to !== undefined && req.reply_to > lastSeq) return new ThreadlineError('not_found', `reply_to ${req.reply_to} does not exist`)
    return null
  }
  const target = targets.get(key(convId, req.target_seq))
  if (!target || target.type !== 'text') return new ThreadlineError('not_found', `target_seq ${req.target_seq} is not a message of this conversation`)
  if (target.deleted) return new ThreadlineError('not_found', `message ${req.target_seq} was deleted`)
  if ((req.type === 'edit' || req.type === 'delete') && target.sender_id !== senderId) {
    return new ThreadlineError('forbidden', `only the sender of message ${req.target_seq} can ${req.type} it`)
  }
  return null
}
