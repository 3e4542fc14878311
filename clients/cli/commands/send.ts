// `threadline send <conv_id> <text>`: sends through the SDK's outbox and waits for the
// server's answer: stored (prints the seq) or refused (exit 1 with the error code).
import { text as readAll } from 'node:stream/consumers'
import { ThreadlineSendError } from '../../sdk/index.js'
import { CliError, UsageError } from '../errors.js'
import { jsonLine } from '../io.js'
import type { Session } from '../session.js'
import { within } from '../wait.js'

export interface SendOptions { replyTo?: number, json?: boolean }

export async function send (session: Session, convId: string, text: string, opts: SendOptions): Promise<void> {
  const { client, config, io } = session
  const body = text === '-' ? (await readAll(io.stdin)).replace(/\n$/, '') : text
  if (body.trim() === '') throw new UsageError('the message is empty')
  const entry = client.send(convId, body, opts.replyTo !== undefined ? { replyTo: opts.replyTo } : {})
  let result
  try {
    result = await within(client.sent(entry.temp_id), config.timeoutMs, () =>
      new CliError(`the server did not acknowledge the message within ${config.timeoutMs / 1000} s; it may still be stored (client_msg_id ${entry.client_msg_id})`))
  } catch (err) {
    if (err instanceof ThreadlineSendError) throw new CliError(`the server refused the message (${err.code}: ${err.entry.error?.message ?? 'no reason given'})`)
    throw err
  }
  io.out(opts.json === true
    ? jsonLine({ conv_id: convId, seq: result.seq, ts: result.ts, client_msg_id: result.client_msg_id })
    : String(result.seq))
}
