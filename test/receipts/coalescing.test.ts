// Coalescing, counted (DESIGN.md §4: "Receipt writes are coalesced (≤ 500 ms) before they
// reach the store and before receipts summaries go out"): 100 members of a group read the
// same message, each sending delivered + read over MQTT as it arrives. Store writes are
// counted by the plugin (its write statements) and checked against PostgreSQL: the rows'
// xmin names the transaction that last wrote each one, so the readers' rows show how many
// write transactions their receipts took at least (one per receipt would leave ~100).
// Summaries are counted by a subscriber to conv/<c>/receipts and by the sender's inbox.
// The same run with a window of 0 shows what the window saves.
import t, { type Test } from 'tap'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { connectUser, startNode } from '../helpers/node.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { sendText } from '../helpers/access.js'
import { waitFor } from '../helpers/wait.js'
import { latestMarker, publishReceipt, receiptStats, receiptsOn, receiptsSettled, storedMarkers } from './helpers.js'

const READERS = 100

/** How many transactions last wrote the readers' member rows. */
async function lastWriters (node: Threadline, conv: string, sender: string): Promise<number> {
  const rows = await node.store.query<{ n: number }>(
    'SELECT count(DISTINCT xmin::text)::int AS n FROM members WHERE conv_id = $1 AND user_id <> $2', [conv, sender])
  return rows[0]?.n ?? 0
}

interface Run {
  /** write statements of the plugin */
  writes: number
  /** distinct transactions that last wrote the readers' rows: at most `writes` */
  lastWriters: number
  convSummaries: number
  senderSummaries: number
  echoes: number
  /** from the first receipt's publish to the first summary */
  firstSummaryMs: number
}

async function hundredRead (t: Test, windowMs: number): Promise<Run> {
  const node = await startNode(t, { env: { THREADLINE_RECEIPT_WINDOW_MS: String(windowMs) } })
  const alice = userId('alice')
  const readers = Array.from({ length: READERS }, (_, i) => userId(`r${i}`))
  const conv = await createConversation(node, [alice, ...readers])
  const a = await connectUser(t, node, alice, 'phone')
  await a.subscribeAsync([`user/${alice}/inbox`, `conv/${conv}/receipts`], { qos: 1 })
  const onConv = receiptsOn(a, `conv/${conv}/receipts`)
  const onInbox = receiptsOn(a, `user/${alice}/inbox`)
  const clients: MqttClient[] = []
  for (let i = 0; i < READERS; i += 20) {
    clients.push(...await Promise.all(readers.slice(i, i + 20).map(async (u) => {
      const c = await connectUser(t, node, u, 'phone')
      await c.subscribeAsync(`user/${u}/inbox`, { qos: 1 })
      return c
    })))
  }
  // each reader acknowledges the message the way an app does: delivered on arrival, then read
  let firstReceiptAt = NaN
  const acked = clients.map((c) => new Promise<void>((resolve, reject) => {
    c.on('message', (_topic, payload) => {
      const m = JSON.parse(payload.toString()) as { t: string, seq?: number }
      if (m.t !== 'event') return
      if (Number.isNaN(firstReceiptAt)) firstReceiptAt = performance.now()
      publishReceipt(c, conv, 'delivered', m.seq as number)
        .then(() => publishReceipt(c, conv, 'read', m.seq as number))
        .then(resolve, reject)
    })
  }))
  let firstSummaryAt = NaN
  a.on('message', (topic) => { if (topic === `conv/${conv}/receipts` && Number.isNaN(firstSummaryAt)) firstSummaryAt = performance.now() })
  const before = receiptStats(node)
  await sendText(a, conv, 'one message for everyone')
  await Promise.all(acked)
  await receiptsSettled(node)
  const after = receiptStats(node)

  await waitFor(() => readers.every(u => latestMarker(onConv, u)?.read_seq === 1), 'every reader\'s read on conv/<c>/receipts')
  await waitFor(() => readers.every(u => latestMarker(onInbox, u)?.read_seq === 1), 'every reader\'s read in the sender\'s inbox')
  for (const u of readers.slice(0, 5)) t.same(await storedMarkers(node.store, conv, u), { delivered_seq: 1, read_seq: 1 })
  t.equal(after.accepted - before.accepted, 2 * READERS, 'every receipt was taken')
  return {
    writes: after.writes - before.writes,
    lastWriters: await lastWriters(node, conv, alice),
    convSummaries: onConv.length,
    senderSummaries: onInbox.length,
    echoes: after.echoes - before.echoes,
    firstSummaryMs: Math.round(firstSummaryAt - firstReceiptAt)
  }
}

t.test('100 members reading one message: a handful of store writes and summaries, not 200', async (t) => {
  const run = await hundredRead(t, 500)
  t.comment(`window 500 ms: ${JSON.stringify(run)}`)
  // all 200 usually share one or two windows; a loaded machine spreads them over a few more
  t.ok(run.writes >= 1 && run.writes <= 8, `${run.writes} writes for ${2 * READERS} receipts`)
  t.ok(run.lastWriters >= 1 && run.lastWriters <= run.writes, `PostgreSQL: ${run.lastWriters} transaction(s) wrote the 100 rows last`)
  t.ok(run.convSummaries <= run.writes, `${run.convSummaries} summaries on conv/<c>/receipts, one per write at most`)
  t.ok(run.senderSummaries <= run.writes, `${run.senderSummaries} summaries in the sender's inbox`)
  t.equal(run.echoes, READERS, 'each reader\'s devices get their own read marker once')
  t.ok(run.firstSummaryMs >= 450, `the first summary waited for the window (${run.firstSummaryMs} ms after the first receipt)`)
})

t.test('a window of 0: receipts are written at once; what arrives during a write goes in the next', async (t) => {
  const run = await hundredRead(t, 0)
  t.comment(`window 0: ${JSON.stringify(run)}`)
  t.ok(run.firstSummaryMs < 450, `the first summary came ${run.firstSummaryMs} ms after the first receipt, without waiting for a window`)
  t.ok(run.writes >= 1, `${run.writes} writes for ${2 * READERS} receipts`)
  t.ok(run.lastWriters >= 1 && run.lastWriters <= run.writes, `PostgreSQL: ${run.lastWriters} transaction(s) wrote the 100 rows last`)
  t.ok(run.convSummaries <= run.writes, `${run.convSummaries} summaries on conv/<c>/receipts`)
  t.equal(run.echoes >= READERS, true, `${run.echoes} own-marker summaries to the readers`)
})
