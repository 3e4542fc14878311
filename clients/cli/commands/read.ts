// `threadline read <conv_id>`: marks the conversation read up to its last event, and waits
// until the server confirms it (the receipts summary that reaches all of the user's devices
// carries the new marker), so that the unread count is 0 everywhere when the command ends.
import type { ErrorEnvelope, ReceiptsSummary } from '../../sdk/index.js'
import { CliError } from '../errors.js'
import { jsonLine } from '../io.js'
import { findConversation, type Session } from '../session.js'
import { within } from '../wait.js'

/** Resolves once the server wrote the marker; rejects when it refused the receipt. */
function confirmed ({ client, config }: Session, convId: string, seq: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const stop = (): void => {
      client.off('receipts', onReceipts)
      client.off('error', onError)
    }
    const onReceipts = (r: ReceiptsSummary): void => {
      if (r.conv_id !== convId) return
      if (!r.markers.some(m => m.user_id === config.userId && m.read_seq >= seq)) return
      stop()
      resolve()
    }
    const onError = (e: ErrorEnvelope | Error): void => {
      if (e instanceof Error || e.conv_id !== convId) return
      stop()
      reject(new CliError(`the server refused the receipt (${e.code}: ${e.message})`))
    }
    client.on('receipts', onReceipts)
    client.on('error', onError)
  })
}

export async function read (session: Session, convId: string, opts: { json?: boolean }): Promise<void> {
  const { client, config, io } = session
  const view = await findConversation(session, convId)
  const seq = view.last_seq
  if (seq > view.markers.read_seq) {
    const done = confirmed(session, convId, seq)
    client.markRead(convId, seq)
    await within(done, config.timeoutMs, () => new CliError(`the server did not confirm the read marker within ${config.timeoutMs / 1000} s`))
  }
  const readSeq = Math.max(seq, view.markers.read_seq)
  io.out(opts.json === true
    ? jsonLine({ conv_id: convId, read_seq: readSeq, delivered_seq: Math.max(readSeq, view.markers.delivered_seq) })
    : seq === 0 ? 'nothing to read yet' : `read up to #${readSeq}`)
}
