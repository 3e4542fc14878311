// GroupCommitter's edge cases, with a flush that records its batches: the class is
// generic over what it commits, and these are its own rules (batching, order, failure,
// lanes, the queue cap), apart from any store.
import t from 'tap'
import { GATHER_ENOUGH, GroupCommitter } from '../../core/messages/group-commit.js'

interface Item { id: number, lane?: object }

/** A flush that holds each batch until released, and records what it got. */
function gatedFlush () {
  const batches: number[][] = []
  const gates: Array<{ open: () => void, fail: (err: Error) => void }> = []
  let waiting: (() => void) | null = null
  const flush = (items: Item[]): Promise<string[]> => {
    batches.push(items.map(i => i.id))
    return new Promise((resolve, reject) => {
      gates.push({ open: () => resolve(items.map(i => `ok ${i.id}`)), fail: reject })
      waiting?.()
    })
  }
  /** waits until batch number n (0-based) has reached the flush */
  const batch = async (n: number): Promise<{ open: () => void, fail: (err: Error) => void }> => {
    while (gates.length <= n) await new Promise<void>(resolve => { waiting = resolve })
    return gates[n] as { open: () => void, fail: (err: Error) => void }
  }
  return { flush, batches, batch }
}

t.test('sends submitted while a batch is in flight form the next batch, in submission order', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Item, string>(g.flush)
  const first = gc.submit({ id: 1 })
  const b0 = await g.batch(0)
  const rest = [2, 3, 4].map(id => gc.submit({ id }))
  t.equal(gc.pending, 4, 'pending counts the batch in flight and the queue')
  b0.open()
  ;(await g.batch(1)).open()
  t.same(await Promise.all([first, ...rest]), ['ok 1', 'ok 2', 'ok 3', 'ok 4'], 'each submit gets its own answer')
  t.same(g.batches, [[1], [2, 3, 4]])
  await gc.drain()
  t.equal(gc.pending, 0)
})

t.test('submits of one synchronous run share the first batch', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Item, string>(g.flush)
  const all = [1, 2, 3].map(id => gc.submit({ id }))
  ;(await g.batch(0)).open()
  await Promise.all(all)
  t.same(g.batches, [[1, 2, 3]])
})

t.test('maxBatch splits the queue, keeping order', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Item, string>(g.flush, { maxBatch: 2 })
  const all = [1, 2, 3, 4, 5].map(id => gc.submit({ id }))
  for (let i = 0; i < 3; i++) (await g.batch(i)).open()
  await Promise.all(all)
  t.same(g.batches, [[1, 2], [3, 4], [5]])
})

t.test('a failed flush rejects its batch only; items without a lane behind it still commit', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Item, string>(g.flush)
  const failed = [1, 2].map(id => gc.submit({ id }))
  const b0 = await g.batch(0)
  const later = gc.submit({ id: 3 })
  b0.fail(new Error('store gone'))
  for (const p of failed) await t.rejects(p, /store gone/)
  ;(await g.batch(1)).open()
  t.equal(await later, 'ok 3')
})

t.test('after a failed flush, the failed lanes\' queued and later items fail too; other lanes go on', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Item, string>(g.flush, { laneOf: i => i.lane })
  const [laneA, laneB] = [{}, {}]
  const a1 = gc.submit({ id: 1, lane: laneA })
  const b0 = await g.batch(0)
  const a2 = gc.submit({ id: 2, lane: laneA })
  const b1 = gc.submit({ id: 3, lane: laneB })
  b0.fail(new Error('store gone'))
  await t.rejects(a1, /store gone/)
  await t.rejects(a2, /store gone/, 'the lane\'s queued item does not overtake the failed one')
  ;(await g.batch(1)).open()
  t.equal(await b1, 'ok 3', 'another lane commits')
  await t.rejects(gc.submit({ id: 4, lane: laneA }), /store gone/, 'the failed lane refuses what it submits afterwards')
  t.same(g.batches, [[1], [3]], 'nothing of the failed lane reached a later flush')
})

t.test('maxQueued holds submits back until the queue has room, without reordering', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Item, string>(g.flush, { maxBatch: 2, maxQueued: 2 })
  const first = gc.submit({ id: 1 })
  const b0 = await g.batch(0) // [1] in flight; the queue is empty
  const more = [2, 3, 4, 5, 6].map(id => gc.submit({ id }))
  t.equal(gc.pending, 6, 'held items count as pending')
  b0.open()
  for (let i = 1; i < 4; i++) (await g.batch(i)).open()
  t.same(await Promise.all([first, ...more]), [1, 2, 3, 4, 5, 6].map(id => `ok ${id}`))
  t.same(g.batches, [[1], [2, 3], [4, 5], [6]], 'held items joined batches in submission order')
  t.ok(g.batches.every(b => b.length <= 2))
})

t.test('drain waits for everything submitted, failures included', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Item, string>(g.flush)
  const p = gc.submit({ id: 1 })
  p.catch(() => {})
  let drained = false
  const d = gc.drain().then(() => { drained = true })
  const b0 = await g.batch(0)
  t.notOk(drained, 'not drained while a batch is in flight')
  b0.fail(new Error('x'))
  await d
  t.ok(drained)
  t.equal(gc.pending, 0)
})

interface Keyed extends Item { key: string }

t.test('with concurrency, batches of other keys flush beside one in flight; a key in flight holds its later items, in order', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Keyed, string>(g.flush as (items: Keyed[]) => Promise<string[]>, { concurrency: 2, keyOf: i => i.key })
  const a1 = gc.submit({ id: 1, key: 'a' })
  const b0 = await g.batch(0)
  // a2 waits for a's batch; b1 goes at once, in a batch of its own beside it; a3 stays behind a2
  const later = [gc.submit({ id: 2, key: 'a' }), gc.submit({ id: 3, key: 'b' }), gc.submit({ id: 4, key: 'a' })]
  const b1 = await g.batch(1)
  t.same(g.batches, [[1], [3]], 'only the free key joined the second batch')
  t.equal(gc.pending, 4)
  b1.open()
  t.equal(await later[1], 'ok 3', 'b answered while a is still in flight')
  t.equal(g.batches.length, 2, 'a\'s later items wait, and the second slot stays free for them')
  b0.open()
  ;(await g.batch(2)).open()
  t.same(await Promise.all([a1, later[0], later[2]]), ['ok 1', 'ok 2', 'ok 4'])
  t.same(g.batches, [[1], [3], [2, 4]], 'a\'s items in submission order, one batch after the other')
  await gc.drain()
  t.equal(gc.pending, 0)
})

t.test('with concurrency, no more batches than allowed are in flight, and drain waits for all of them', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Keyed, string>(g.flush as (items: Keyed[]) => Promise<string[]>, { concurrency: 2, keyOf: i => i.key })
  const first = gc.submit({ id: 1, key: 'a' })
  const b0 = await g.batch(0)
  const second = gc.submit({ id: 2, key: 'b' })
  const b1 = await g.batch(1)
  const third = gc.submit({ id: 3, key: 'c' })
  await Promise.resolve()
  t.equal(g.batches.length, 2, 'the third waits for a free slot')
  let drained = false
  const d = gc.drain().then(() => { drained = true })
  b1.open()
  await second
  ;(await g.batch(2)).open()
  await third
  t.notOk(drained, 'one batch still in flight')
  b0.open()
  await Promise.all([first, d])
  t.ok(drained)
  t.same(g.batches, [[1], [2], [3]])
})

t.test('with concurrency, a pump looks at no more than maxBatch queued items: a backlog of a key in flight is not rescanned whole', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Keyed, string>(g.flush as (items: Keyed[]) => Promise<string[]>, { concurrency: 2, maxBatch: 2, keyOf: i => i.key })
  const first = gc.submit({ id: 1, key: 'a' })
  const b0 = await g.batch(0)
  const rest = [gc.submit({ id: 2, key: 'a' }), gc.submit({ id: 3, key: 'a' }), gc.submit({ id: 4, key: 'b' })]
  await Promise.resolve()
  t.same(g.batches, [[1]], 'b, third in the queue behind two of a, waits')
  b0.open()
  ;(await g.batch(1)).open()
  ;(await g.batch(2)).open()
  t.same(await Promise.all([first, ...rest]), ['ok 1', 'ok 2', 'ok 3', 'ok 4'])
  t.same(g.batches, [[1], [2, 3], [4]])
})

/** lets every pending microtask and immediate run: what would start at once has started */
const settle = async (): Promise<void> => { for (let i = 0; i < 3; i++) await new Promise(resolve => setImmediate(resolve)) }

t.test('gatherMs: a send to an idle committer is flushed at once, however long the window', async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Item, string>(g.flush, { gatherMs: 60_000 })
  const one = gc.submit({ id: 1 })
  await settle()
  t.same(g.batches, [[1]], 'no batch had finished: nothing to gather behind')
  ;(await g.batch(0)).open()
  t.equal(await one, 'ok 1')
})

t.test(`gatherMs: after a batch, fewer than ${GATHER_ENOUGH} waiting sends wait for more; the ${GATHER_ENOUGH}th starts the batch at once`, async (t) => {
  const g = gatedFlush()
  const gc = new GroupCommitter<Item, string>(g.flush, { gatherMs: 60_000 })
  const all = [gc.submit({ id: 1 })]
  const b0 = await g.batch(0)
  all.push(gc.submit({ id: 2 }))
  b0.open()
  await settle()
  t.same(g.batches, [[1]], 'one send waiting: it waits for company')
  for (let id = 3; id <= GATHER_ENOUGH; id++) all.push(gc.submit({ id }))
  await settle()
  t.equal(g.batches.length, 1, `${GATHER_ENOUGH - 1} waiting: still gathering`)
  all.push(gc.submit({ id: GATHER_ENOUGH + 1 }))
  ;(await g.batch(1)).open()
  t.same(g.batches[1], Array.from({ length: GATHER_ENOUGH }, (_, i) => i + 2), 'the batch holds every gathered send, in order')
  t.same(await Promise.all(all), Array.from({ length: GATHER_ENOUGH + 1 }, (_, i) => `ok ${i + 1}`))
})

t.test('gatherMs: when the window ends, the batch goes with what gathered, and drain waits for it', async (t) => {
  const g = gatedFlush()
  const gatherMs = 40
  const gc = new GroupCommitter<Item, string>(g.flush, { gatherMs })
  const first = gc.submit({ id: 1 })
  const b0 = await g.batch(0)
  const second = gc.submit({ id: 2 })
  const finished = performance.now()
  b0.open()
  await first
  const drained = gc.drain()
  const b1 = await g.batch(1)
  // timers may fire up to a millisecond early by performance.now()
  t.ok(performance.now() - finished >= gatherMs - 1, 'the second batch started when the window ended')
  t.same(g.batches, [[1], [2]])
  b1.open()
  t.equal(await second, 'ok 2')
  await drained
  t.equal(gc.pending, 0)
})
