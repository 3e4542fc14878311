// The fan-out bound (MAX_FANOUT_IN_FLIGHT) counts a send's publishes before they start:
// one batch of 99 sends to a 256-member group used to put 99 × 257 = 25,443 publishes in
// flight at once, because the bound was only checked before a batch.
import t from 'tap'
import { MAX_FANOUT_IN_FLIGHT } from '../../core/messages/send-service.js'
import { UNLIMITED_SENDS, connectUser, startNode } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/wait.js'

const MEMBERS = 256
const SENDS = 100

t.test('a batch to a large group never has more fan-out in flight than the bound', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: UNLIMITED_SENDS })
  const sender = userId('sender')
  const conv = await createConversation(node, [sender, ...Array.from({ length: MEMBERS - 1 }, (_, i) => userId(`m${i}`))], 'group')
  const a = await connectUser(t, node, sender, 'phone')

  // hold the store so that the sends gather into one batch behind the first
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const holding = node.store.transaction(async () => { await held })
  const acks = Array.from({ length: SENDS }, (_, i) => a.publishAsync(`conv/${conv}/send`, text(`m${i}`, `hello ${i}`), { qos: 1 }))
  await waitFor(() => node.sends.pending >= SENDS, `${SENDS} sends to queue`)
  release()
  await holding
  await Promise.all(acks)

  const { peak } = node.sends.fanout
  t.ok(peak > MEMBERS, `the fan-out ran (peak ${peak})`)
  t.ok(peak <= MAX_FANOUT_IN_FLIGHT, `at most ${MAX_FANOUT_IN_FLIGHT} publishes were in flight at once (peak ${peak})`)
  const rows = await node.store.query<{ n: number }>('SELECT count(*)::int AS n FROM events')
  t.equal(rows[0]?.n, SENDS, 'every send was stored')
})
