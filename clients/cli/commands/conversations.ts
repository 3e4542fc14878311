// `threadline conversations`: the conversation list, newest activity first.
import { conversationLines } from '../format.js'
import { jsonLine } from '../io.js'
import type { Session } from '../session.js'

export async function conversations ({ client, config, io }: Session, opts: { json?: boolean }): Promise<void> {
  const list = await client.conversations()
  if (opts.json === true) {
    for (const c of list) io.out(jsonLine(c))
    return
  }
  if (list.length === 0) {
    io.note('no conversations yet: start one with `threadline create <user_id>`')
    return
  }
  for (const line of conversationLines(list, config.userId)) io.out(line)
}
