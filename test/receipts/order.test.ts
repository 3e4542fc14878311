// Markers never go backwards (DESIGN.md §4): receipts reordered and replayed over MQTT,
// at QoS 0 and 1, from one device, and from two devices of the reader connected to the
// two nodes of a cluster (shared PostgreSQL and Redis), each node coalescing on its own.
import { setTimeout } from 'node:timers/promises'
import t from 'tap'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { connectUser, startNode } from '../helpers/node.js'
import { startCluster } from '../helpers/cluster.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { sendText } from '../helpers/access.js'
import { waitFor } from '../helpers/wait.js'
import { backwardSteps, latestMarker, publishReceipt, receiptStats, receiptsOn, receiptsSettled, scrambledReceipts, storedMarkers, type StoredMarkers } from './helpers.js'

// 180 receipts from one reader, more than a user's receipt burst: without the limit, so
// that every receipt reaches the coalescer as it comes (test/limits/ tests the limit)
const WINDOW = { THREADLINE_RECEIPT_WINDOW_MS: '30', THREADLINE_RECEIPT_RATE: '0' }
const MESSAGES = 30

/** Reads the stored markers until stopped, yielding between reads; every value seen. */
function watchStore (node: Threadline, conv: string, user: string): { stop: () => Promise<StoredMarkers[]> } {
  const seen: StoredMarkers[] = []
  const state = { on: true }
  const loop = (async () => {
    while (state.on) {
      seen.push(await storedMarkers(node.store, conv, user) as StoredMarkers)
      await setTimeout(2)
    }
  })()
  return { stop: async () => { state.on = false; await loop; return seen } }
}

async function publishAll (client: MqttClient, conv: string, receipts: ReadonlyArray<{ status: 'delivered' | 'read', seq: number }>): Promise<void> {
  // QoS 0 and 1 alternate, eight in flight at a time, with a pause now and then so that
  // the receipts spread over several coalescing windows
  const pending: Array<Promise<void>> = []
  for (const [i, r] of receipts.entries()) {
    pending.push(publishReceipt(client, conv, r.status, r.seq, i % 2 === 0 ? 1 : 0))
    if (pending.length >= 8) await Promise.all(pending.splice(0))
    if (i % 24 === 23) await setTimeout(15)
  }
  await Promise.all(pending)
}

t.test('one device: reordered and replayed receipts at QoS 0 and 1 never move the marker backwards', async (t) => {
  const node = await startNode(t, { env: WINDOW })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  await a.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  const summaries = receiptsOn(a, `user/${alice}/inbox`)
  for (let i = 1; i <= MESSAGES; i++) await sendText(a, conv, `m${i}`)
  const b = await connectUser(t, node, bob, 'phone')

  const watch = watchStore(node, conv, bob)
  await publishAll(b, conv, scrambledReceipts(MESSAGES, 6, 11))
  await receiptsSettled(node)
  const seen = await watch.stop()
  t.same(backwardSteps(seen), [], `never backwards over ${seen.length} reads of the store`)
  t.same(seen.at(-1), { delivered_seq: MESSAGES, read_seq: MESSAGES })
  await waitFor(() => latestMarker(summaries, bob)?.read_seq === MESSAGES, 'alice to see bob\'s last read')
  const bobs = summaries.flatMap(s => s.markers.filter(m => m.user_id === bob))
  t.same(backwardSteps(bobs), [], 'on one node the summaries come in order too')
  t.ok(bobs.length > 1 && bobs.length < MESSAGES, `${bobs.length} summaries for ${6 * MESSAGES} receipts`)
})

t.test('two devices of the reader on two nodes: each node coalesces, the stored marker only grows, every device ends at the max', async (t) => {
  const cluster = await startCluster(t, 2, WINDOW)
  const [one, two] = cluster.nodes as [Threadline, Threadline]
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(one, [alice, bob])
  await two.membership.catchUp()
  const a = await connectUser(t, one, alice, 'phone')
  await a.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  const aliceSees = receiptsOn(a, `user/${alice}/inbox`)
  const phone = await connectUser(t, one, bob, 'phone')
  const laptop = await connectUser(t, two, bob, 'laptop')
  await phone.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  await laptop.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  const phoneSees = receiptsOn(phone, `user/${bob}/inbox`)
  const laptopSees = receiptsOn(laptop, `user/${bob}/inbox`)
  for (let i = 1; i <= MESSAGES; i++) await sendText(a, conv, `m${i}`)

  const watch = watchStore(one, conv, bob)
  // the laptop's node has never seen these seqs committed: it asks the store
  await Promise.all([
    publishAll(phone, conv, scrambledReceipts(MESSAGES, 10, 3)),
    publishAll(laptop, conv, scrambledReceipts(MESSAGES, 10, 5).reverse())
  ])
  await Promise.all([receiptsSettled(one), receiptsSettled(two)])
  const seen = await watch.stop()
  t.same(backwardSteps(seen), [], `never backwards over ${seen.length} reads of the store`)
  const final = { delivered_seq: MESSAGES, read_seq: MESSAGES }
  t.same(seen.at(-1), final)
  t.ok(receiptStats(two).lastSeqReads >= 1, 'node two read the last seq from the store')

  // summaries of two nodes may cross on the way: a device applies them with max
  await waitFor(() => latestMarker(aliceSees, bob)?.read_seq === MESSAGES, 'alice to see bob\'s last read')
  await waitFor(() => latestMarker(phoneSees, bob)?.read_seq === MESSAGES, 'bob\'s phone to learn his last read')
  await waitFor(() => latestMarker(laptopSees, bob)?.read_seq === MESSAGES, 'bob\'s laptop to learn his last read')
  t.same(latestMarker(aliceSees, bob), final)
  t.same(latestMarker(phoneSees, bob), final)
  t.same(latestMarker(laptopSees, bob), final)
})
