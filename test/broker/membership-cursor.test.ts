// LogCursor: which membership log ids a node has applied, when ids become visible out of
// order (see broker/membership-cursor.ts). Time is passed in, so no waiting.
import t from 'tap'
import { LogCursor, MAX_TRACKED_GAPS } from '../../broker/membership-cursor.js'

t.test('ids read in order are taken once; ids at or below the start never', async (t) => {
  const cursor = new LogCursor(10, 1000)
  t.notOk(cursor.take(9, 0), 'below the start')
  t.notOk(cursor.take(10, 0), 'the start itself')
  t.ok(cursor.take(11, 0))
  t.ok(cursor.take(12, 0))
  t.notOk(cursor.take(12, 0), 'a row read again is not applied again')
  t.equal(cursor.highest, 12)
  t.same(cursor.gaps, [])
})

t.test('an id skipped over is waited for, taken when it shows up, and given up after the wait', async (t) => {
  const cursor = new LogCursor(0, 1000)
  t.ok(cursor.take(1, 0))
  t.ok(cursor.take(4, 100), '4 is visible before 2 and 3 commit')
  t.same(cursor.gaps, [2, 3], '2 and 3 are asked for again on every read')
  t.same(cursor.expire(1100), [], 'within the wait, nothing is given up')
  t.ok(cursor.take(3, 1100), '3 commits late and is applied')
  t.notOk(cursor.take(3, 1100), 'once')
  t.same(cursor.gaps, [2])
  t.same(cursor.expire(1101), [2], '2 is given up gapWaitMs after it was noticed (rolled back)')
  t.same(cursor.gaps, [])
  t.notOk(cursor.take(2, 1200), 'a row given up is not applied if it ever shows up')
  t.equal(cursor.highest, 4)
})

t.test('a huge jump tracks at most MAX_TRACKED_GAPS ids', async (t) => {
  const cursor = new LogCursor(0, 1000)
  t.ok(cursor.take(MAX_TRACKED_GAPS * 3, 0))
  t.equal(cursor.gaps.length, MAX_TRACKED_GAPS, 'the lowest ids are given up at once')
  t.equal(Math.min(...cursor.gaps), MAX_TRACKED_GAPS * 2)
})
