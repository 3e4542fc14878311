// One group-commit batch, decided and written by PostgreSQL in one statement: the
// function threadline_commit_sends (broker/store/migrations.ts). It locks the batch's
// conversations (sorted, so two nodes never deadlock), then reads membership,
// idempotency and the targets of reactions/edits/deletes for the whole batch at once,
// assigns seqs in arrival order and inserts every new event with one INSERT. A
// conversation's row lock is what keeps seqs gapless and ordered across broker nodes.
// One statement is one round trip: a batch no longer waits on the node's event loop
// between BEGIN, its reads, its write and COMMIT.
import type { Queryable } from '../store.js'
import { ThreadlineError, type SendRequest } from '../../schemas/index.js'
import { bodyOf, type EventRow } from './envelopes.js'

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

/** One answer row of threadline_commit_sends, per item, in the batch's order. */
interface Outcome {
  o_i: number
  /** see the function's `code` */
  o_code: number
  o_seq: number | null
  /** code 3: the item (1-based) whose send this repeats */
  o_ref: number | null
  o_type: EventRow['type'] | null
  o_body: Record<string, unknown> | null
  o_target_seq: number | null
  /** code 2: when the stored send was stored */
  o_created_at: Date | null
  /** on the first row only: the transaction's now(), the created_at of every event stored by the batch */
  o_now: Date | null
  /** on a conversation's first stored item */
  o_members: string[] | null
}

/** The batch as the function's one parameter: i numbers the items from 1. */
function itemsParam (items: readonly PendingSend[], bodies: ReadonlyArray<Record<string, unknown>>): string {
  return JSON.stringify(items.map(({ convId, senderId, req }, i) => ({
    i: i + 1,
    c: convId,
    s: senderId,
    m: req.client_msg_id,
    t: req.type,
    b: bodies[i],
    g: 'target_seq' in req ? req.target_seq : null,
    r: req.type === 'text' ? req.reply_to ?? null : null
  })))
}

const COMMIT_SENDS = `SELECT o_i, o_code, o_seq, o_ref, o_type, o_body, o_target_seq,
  CASE WHEN o_code = 2 THEN o_created_at END AS o_created_at,
  CASE WHEN o_i = 1 THEN now() END AS o_now,
  o_members
  FROM threadline_commit_sends($1::jsonb)`

export async function commitBatch (q: Queryable, items: readonly PendingSend[]): Promise<CommitResult[]> {
  if (items.length === 0) return []
  const bodies = items.map(i => bodyOf(i.req))
  // The function answers now() as every stored row's created_at: the driver would parse
  // that same timestamp once per row, so it is asked for once, on the first row.
  const rows = await q.query<Outcome>(COMMIT_SENDS, [itemsParam(items, bodies)])
  const members = new Map<string, readonly string[]>()
  const createdAt = rows[0]?.o_now as Date
  for (const r of rows) {
    if (r.o_members !== null) members.set((items[r.o_i - 1] as PendingSend).convId, r.o_members)
  }
  const results: CommitResult[] = []
  for (let k = 0; k < items.length; k++) {
    const item = items[k] as PendingSend
    const r = rows[k] as Outcome
    switch (r.o_code) {
      case 1: {
        const { req } = item
        results.push({
          kind: 'stored',
          row: {
            conv_id: item.convId,
            seq: r.o_seq as number,
            sender_id: item.senderId,
            client_msg_id: req.client_msg_id,
            type: req.type,
            body: bodies[k] as Record<string, unknown>,
            target_seq: 'target_seq' in req ? req.target_seq : null,
            created_at: createdAt as Date
          },
          members: members.get(item.convId) ?? []
        })
        break
      }
      case 2:
        results.push({
          kind: 'duplicate',
          row: {
            conv_id: item.convId,
            seq: r.o_seq as number,
            sender_id: item.senderId,
            client_msg_id: item.req.client_msg_id,
            type: r.o_type as EventRow['type'],
            body: r.o_body ?? {},
            target_seq: r.o_target_seq,
            created_at: r.o_created_at as Date
          }
        })
        break
      case 3: {
        // a retry of a send stored earlier in this very batch
        const original = results[(r.o_ref as number) - 1] as Extract<CommitResult, { kind: 'stored' }>
        results.push({ kind: 'duplicate', row: original.row })
        break
      }
      default:
        results.push({ kind: 'rejected', error: rejection(r.o_code, item) })
    }
  }
  return results
}

function rejection (code: number, { convId, senderId, req }: PendingSend): ThreadlineError {
  const target = 'target_seq' in req ? req.target_seq : 0
  switch (code) {
    // an unknown conversation answers like one the sender is not in: no existence oracle
    case 4: return new ThreadlineError('not_member', `you are not a member of conversation ${convId}`)
    case 5: return new ThreadlineError('not_found', `reply_to ${req.type === 'text' ? req.reply_to : ''} does not exist`)
    case 6: return new ThreadlineError('not_found', `target_seq ${target} is not a message of this conversation`)
    case 7: return new ThreadlineError('not_found', `message ${target} was deleted`)
    case 8: return new ThreadlineError('forbidden', `only the sender of message ${target} can ${req.type} it`)
    default: throw new Error(`threadline_commit_sends answered code ${code} for ${convId}/${senderId}/${req.client_msg_id}`)
  }
}
