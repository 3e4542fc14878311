// `threadline tail`: follows the inbox and prints one JSON line per envelope, as the wire
// carries it (`t`: event, receipts, membership, error), for scripts: `threadline tail | jq`.
// Durable events come per conversation in seq order, each once (the SDK fills gaps from
// history). Connection changes are commentary on stderr. Runs until SIGINT or SIGTERM.
import type { StateChange } from '../../sdk/index.js'
import { jsonLine } from '../io.js'
import type { Session } from '../session.js'
import { interrupted } from '../wait.js'

export async function tail ({ client, io }: Session): Promise<void> {
  const print = (envelope: object): void => io.out(jsonLine(envelope))
  client.on('event', print)
  client.on('receipts', print)
  client.on('membership', print)
  client.on('error', e => {
    if (e instanceof Error) io.note(`threadline: ${e.message}`)
    else print(e)
  })
  let last: StateChange = { state: client.state, transport: client.transport }
  const onState = (change: StateChange): void => {
    if (change.state === last.state && change.transport === last.transport) return
    last = change
    io.note(`threadline: ${change.state}${change.transport !== null ? ` (${change.transport})` : ''}`)
  }
  client.on('state', onState)
  io.note(`threadline: following ${client.transport ?? 'the inbox'}; Ctrl-C stops`)
  await interrupted()
  // closing is no news: the state change it brings is not printed
  client.off('state', onState)
}
