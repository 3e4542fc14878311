// `threadline history <conv_id> [--before SEQ] [--limit N]`: a page of messages, oldest
// first, each folded with its edits, deletes and reactions. Scrolling back is --before
// the first seq shown (the hint on stderr says so).
import { messageLine } from '../format.js'
import { jsonLine } from '../io.js'
import type { Session } from '../session.js'

export interface HistoryOptions { before?: number, limit: number, json?: boolean }

export async function history ({ client, io }: Session, convId: string, opts: HistoryOptions): Promise<void> {
  const messages = await client.history(convId, { limit: opts.limit, ...(opts.before !== undefined ? { beforeSeq: opts.before } : {}) })
  for (const m of messages) io.out(opts.json === true ? jsonLine(m) : messageLine(m))
  const first = messages[0]
  if (messages.length === 0) io.note(opts.before === undefined ? 'no messages yet' : `no messages before #${opts.before}`)
  else if (first !== undefined && first.seq > 1) io.note(`older: threadline history ${convId} --before ${first.seq}`)
}
