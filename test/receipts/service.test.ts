// The receipts service over a real store, both drivers (PGlite and PostgreSQL): marker
// rules under reordering, duplicates and concurrent writers, what a write hands on, and
// the bounds on what waits. Publishes are recorded (the observation point); the store is
// the real one.
import t, { type Test } from 'tap'
import { createLogger } from '../../broker/logger.js'
import { MembershipCache } from '../../broker/membership.js'
import type { Store } from '../../broker/store/index.js'
import { DEFAULT_RECEIPT_LIMITS, ReceiptService, type ReceiptLimits } from '../../core/receipts/service.js'
import { forEachStore } from '../helpers/stores.js'
import { waitFor } from '../helpers/wait.js'
import { backwardSteps, scrambledReceipts, seedConversation, storedMarkers, type StoredMarkers } from './helpers.js'

interface Sent { topic: string, qos: 0 | 1, payload: { t: string, conv_id: string, markers: Array<{ user_id: string, delivered_seq: number, read_seq: number }> } }

function service (t: Test, store: Store, limits: Partial<ReceiptLimits> = {}): { receipts: ReceiptService, sent: Sent[] } {
  const log = createLogger('silent')
  const sent: Sent[] = []
  const receipts = new ReceiptService(store, async (topic, payload, opts) => {
    sent.push({ topic, qos: opts.qos, payload: JSON.parse(payload) })
  }, new MembershipCache(store, log), log, { ...DEFAULT_RECEIPT_LIMITS, windowMs: 20, maxPayloadBytes: 65536, ...limits })
  t.teardown(() => receipts.stop())
  return { receipts, sent }
}

const settled = (receipts: ReceiptService): Promise<void> =>
  waitFor(() => receipts.stats.pending === 0 && receipts.stats.writing === 0, 'the receipts to be written')

t.test('markers only grow: reordered and duplicated receipts end at the max, stale ones change nothing', t => forEachStore(t, async (t, store) => {
  const conv = await seedConversation(store, ['alice', 'bob'], Array.from({ length: 20 }, () => ({ sender: 'alice' })))
  const { receipts, sent } = service(t, store)
  const stream = scrambledReceipts(20, 8, 7)
  const seen: StoredMarkers[] = []
  // in slices, so that several writes happen and the marker is watched between them
  for (let i = 0; i < stream.length; i += 10) {
    for (const r of stream.slice(i, i + 10)) await receipts.post('bob', conv, r)
    await settled(receipts)
    seen.push(await storedMarkers(store, conv, 'bob') as StoredMarkers)
  }
  t.same(backwardSteps(seen), [], `never backwards over ${seen.length} writes`)
  t.same(seen.at(-1), { delivered_seq: 20, read_seq: 20 })
  t.ok(seen.some(m => m.read_seq > 0 && m.read_seq < 20), 'the marker climbed in steps')
  t.same(sent.flatMap(s => s.payload.markers).filter(m => m.delivered_seq < m.read_seq), [], 'read implies delivered in every summary')

  const before = sent.length
  const writes = receipts.stats.writes
  await receipts.post('bob', conv, { status: 'read', seq: 3 })
  await receipts.post('bob', conv, { status: 'delivered', seq: 20 })
  await settled(receipts)
  t.equal(receipts.stats.writes, writes + 1, 'a stale receipt is written (max wins in the store)…')
  t.equal(sent.length, before, '…but changes nothing, so no summary goes out')
  t.same(await storedMarkers(store, conv, 'bob'), { delivered_seq: 20, read_seq: 20 })
}))

t.test('two writers (two nodes) on one conversation at once never move a marker backwards', t => forEachStore(t, async (t, store) => {
  const conv = await seedConversation(store, ['alice', 'bob', 'carol'], Array.from({ length: 60 }, () => ({ sender: 'alice' })))
  const one = service(t, store, { windowMs: 0 }).receipts
  const two = service(t, store, { windowMs: 0 }).receipts
  const watching = { on: true }
  const seen: StoredMarkers[] = []
  const watcher = (async () => {
    while (watching.on) {
      seen.push(await storedMarkers(store, conv, 'bob') as StoredMarkers)
      // PGlite answers without a turn of the event loop: let the writers' timers run
      await new Promise(resolve => setImmediate(resolve))
    }
  })()
  // one node climbs, the other replays the same receipts backwards
  await Promise.all([
    (async () => { for (let s = 1; s <= 60; s++) await one.post('bob', conv, { status: s % 2 === 0 ? 'read' : 'delivered', seq: s }) })(),
    (async () => { for (let s = 60; s >= 1; s--) await two.post('bob', conv, { status: s % 2 === 0 ? 'read' : 'delivered', seq: s }) })()
  ])
  await Promise.all([settled(one), settled(two)])
  watching.on = false
  await watcher
  seen.push(await storedMarkers(store, conv, 'bob') as StoredMarkers)
  t.same(backwardSteps(seen), [], `never backwards over ${seen.length} reads`)
  t.same(seen.at(-1), { delivered_seq: 60, read_seq: 60 })
}))

t.test('a write hands on: the summary to conv/<c>/receipts and the senders, the own marker to readers whose read grew', t => forEachStore(t, async (t, store) => {
  const conv = await seedConversation(store, ['alice', 'bob', 'carol', 'dave', 'erin'], [
    { sender: 'alice' }, { sender: 'bob' }, { sender: 'carol', type: 'reaction', target: 1 }, { sender: 'alice', type: 'edit', target: 1 }
  ])
  const { receipts, sent } = service(t, store)
  await receipts.post('dave', conv, { status: 'read', seq: 2 })
  await receipts.post('dave', conv, { status: 'delivered', seq: 4 })
  await receipts.post('erin', conv, { status: 'delivered', seq: 4 })
  await settled(receipts)
  const summary = {
    t: 'receipts',
    conv_id: conv,
    markers: [{ user_id: 'dave', delivered_seq: 4, read_seq: 2 }, { user_id: 'erin', delivered_seq: 4, read_seq: 0 }]
  }
  t.same(sent.sort((a, b) => a.topic.localeCompare(b.topic)), [
    { topic: `conv/${conv}/receipts`, qos: 0, payload: summary },
    { topic: 'user/alice/inbox', qos: 1, payload: summary },
    { topic: 'user/bob/inbox', qos: 1, payload: summary },
    { topic: 'user/dave/inbox', qos: 1, payload: { t: 'receipts', conv_id: conv, markers: [{ user_id: 'dave', delivered_seq: 4, read_seq: 2 }] } }
  ], 'carol reacted and alice edited: messages only; erin\'s read did not grow')
  t.same(receipts.stats, { ...receipts.stats, accepted: 3, writes: 1, summaries: 3, echoes: 1, dropped: 0 })
}))

t.test('a sender who left the conversation gets no summary; a member who left changes nothing', t => forEachStore(t, async (t, store) => {
  const conv = await seedConversation(store, ['alice', 'bob', 'carol'], [{ sender: 'alice' }, { sender: 'bob' }])
  await store.query('DELETE FROM members WHERE conv_id = $1 AND user_id = $2', [conv, 'alice'])
  const { receipts, sent } = service(t, store)
  await receipts.post('carol', conv, { status: 'delivered', seq: 2 })
  await settled(receipts)
  t.same(sent.map(s => s.topic).sort(), [`conv/${conv}/receipts`, 'user/bob/inbox'])
  await t.rejects(receipts.post('alice', conv, { status: 'read', seq: 2 }), { code: 'not_member' })
}))

t.test('what waits is bounded: a conversation at its cap is written at once, past the total cap a new pair is refused, a waiting pair merges', t => forEachStore(t, async (t, store) => {
  const members = Array.from({ length: 8 }, (_, i) => `m${i}`)
  const conv = await seedConversation(store, members, [{ sender: 'm0' }, { sender: 'm0' }])
  const other = await seedConversation(store, members, [{ sender: 'm0' }])
  // a long window: nothing is written unless a cap says so
  const { receipts } = service(t, store, { windowMs: 60_000, maxPendingPerConversation: 3, maxPending: 4 })
  for (const m of ['m1', 'm2']) await receipts.post(m, conv, { status: 'delivered', seq: 1 })
  t.match(receipts.stats, { pending: 2, writes: 0 })
  await receipts.post('m3', conv, { status: 'delivered', seq: 1 })
  await waitFor(() => receipts.stats.writes === 1 && receipts.stats.writing === 0, 'the conversation at its cap to be written')
  for (const m of ['m1', 'm2', 'm3']) t.same(await storedMarkers(store, conv, m), { delivered_seq: 1, read_seq: 0 })

  for (const m of ['m1', 'm2']) await receipts.post(m, other, { status: 'delivered', seq: 1 })
  for (const m of ['m4', 'm5']) await receipts.post(m, conv, { status: 'delivered', seq: 1 })
  t.match(receipts.stats, { pending: 4, writes: 1, dropped: 0 })
  await t.rejects(receipts.post('m6', conv, { status: 'delivered', seq: 1 }), { code: 'unavailable' }, 'past the total cap: refused (HTTP 503), nothing grows')
  t.match(receipts.stats, { pending: 4, dropped: 1, pendingPeak: 4 })
  await receipts.post('m1', other, { status: 'read', seq: 1 })
  t.match(receipts.stats, { pending: 4, dropped: 1 }, 'a pair already waiting merges by max')

  await receipts.stop()
  t.same(await storedMarkers(store, other, 'm1'), { delivered_seq: 1, read_seq: 1 }, 'stopping writes what waits')
  t.same(await storedMarkers(store, conv, 'm5'), { delivered_seq: 1, read_seq: 0 })
  t.same(await storedMarkers(store, conv, 'm6'), { delivered_seq: 0, read_seq: 0 })
}))

t.test('the HTTP answer counts markers still being written', t => forEachStore(t, async (t, store) => {
  const conv = await seedConversation(store, ['alice', 'bob'], [{ sender: 'alice' }, { sender: 'alice' }])
  const { receipts } = service(t, store, { windowMs: 200 })
  await receipts.post('bob', conv, { status: 'delivered', seq: 2 })
  let release = (): void => {}
  const held = new Promise<void>(resolve => { release = resolve })
  // bob's row locked (PostgreSQL), or the one connection busy (PGlite): the write, when
  // the window ends, waits
  const locked = store.transaction(async (tx) => {
    await tx.query('SELECT 1 FROM members WHERE conv_id = $1 AND user_id = $2 FOR UPDATE', [conv, 'bob'])
    await held
  })
  await waitFor(() => receipts.stats.writing === 1 && receipts.stats.pending === 0, 'the write to take the batch')
  const answer = receipts.post('bob', conv, { status: 'read', seq: 1 })
  release()
  await locked
  t.same(await answer, { conv_id: conv, user_id: 'bob', delivered_seq: 2, read_seq: 1 })
}))
