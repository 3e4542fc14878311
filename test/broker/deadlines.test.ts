// Deadlines (broker/deadlines.ts): many deadlines on one timer, as the token expiries and
// the presence idle times use it. Real timers, short resolutions.
import t from 'tap'
import { Deadlines } from '../../broker/deadlines.js'
import { withTimeout } from '../helpers/wait.js'

function collector<T> (resolutionMs: number): { deadlines: Deadlines<T>, fired: Array<{ item: T, at: number }>, next: () => Promise<T> } {
  const fired: Array<{ item: T, at: number }> = []
  const waiting: Array<(item: T) => void> = []
  const deadlines = new Deadlines<T>(resolutionMs, (item, nowMs) => {
    fired.push({ item, at: nowMs })
    waiting.shift()?.(item)
  })
  return { deadlines, fired, next: () => withTimeout(new Promise<T>(resolve => waiting.push(resolve)), 'a deadline to fire', 5000) }
}

t.test('items fire in deadline order, never before their deadline, at most one slot late', async (t) => {
  const { deadlines, fired, next } = collector<string>(20)
  t.teardown(() => deadlines.clear())
  const start = Date.now()
  deadlines.add('late', start + 200)
  deadlines.add('early', start + 50)
  deadlines.add('middle', start + 120)
  t.equal(deadlines.size, 3)
  await next()
  await next()
  await next()
  t.same(fired.map(f => f.item), ['early', 'middle', 'late'])
  const due = { early: 50, middle: 120, late: 200 }
  for (const f of fired) {
    const late = f.at - (start + due[f.item as keyof typeof due])
    t.ok(late >= 0 && late < 20 + 50, `${f.item} fired ${late} ms after its deadline`)
  }
  t.equal(deadlines.size, 0)
})

t.test('a deleted item never fires; the others of its slot still do', async (t) => {
  const { deadlines, fired, next } = collector<string>(50)
  t.teardown(() => deadlines.clear())
  const at = Date.now() + 60
  const slotA = deadlines.add('a', at)
  deadlines.add('b', at)
  const slotC = deadlines.add('c', at + 200)
  deadlines.delete('a', slotA)
  deadlines.delete('c', slotC)
  deadlines.delete('c', slotC) // twice: nothing
  t.equal(deadlines.size, 1)
  t.equal(await next(), 'b')
  const marker = Date.now() + 250
  deadlines.add('marker', marker)
  t.equal(await next(), 'marker', 'c would have fired before this one')
  t.same(fired.map(f => f.item), ['b', 'marker'])
})

t.test('an item added for an earlier time than the timer waits for is not held back', async (t) => {
  const { deadlines, next } = collector<string>(10)
  t.teardown(() => deadlines.clear())
  deadlines.add('far', Date.now() + 60_000)
  const before = Date.now()
  deadlines.add('near', before + 30)
  t.equal(await next(), 'near')
  t.ok(Date.now() - before < 1000, 'did not wait for the far one')
  t.equal(deadlines.size, 1, 'far still waits')
})

t.test('an item due in the past fires at once; due() may add items for later', async (t) => {
  const fired: string[] = []
  let done: () => void = () => {}
  const finished = new Promise<void>(resolve => { done = resolve })
  const deadlines = new Deadlines<string>(10, (item) => {
    fired.push(item)
    if (item === 'again') deadlines.add('later', Date.now() + 30)
    if (item === 'later') done()
  })
  t.teardown(() => deadlines.clear())
  deadlines.add('again', Date.now() - 1000)
  await withTimeout(finished, 'the re-added item to fire', 5000)
  t.same(fired, ['again', 'later'])
})

t.test('clear() forgets everything and stops the timer', async (t) => {
  const { deadlines, fired } = collector<string>(10)
  deadlines.add('x', Date.now() + 20)
  deadlines.clear()
  t.equal(deadlines.size, 0)
  // a marker on a fresh instance shows time passed beyond x's deadline
  const other = collector<string>(10)
  other.deadlines.add('marker', Date.now() + 60)
  await other.next()
  t.same(fired, [], 'x never fired')
})

t.test('items added and deleted many times in one slot never fire; later items still do', async (t) => {
  const { deadlines, next } = collector<number>(1000)
  t.teardown(() => deadlines.clear())
  const at = Date.now() + 1500
  for (let i = 0; i < 1000; i++) deadlines.delete(i, deadlines.add(i, at))
  t.equal(deadlines.size, 0)
  deadlines.add(-1, Date.now() + 10)
  t.equal(await next(), -1)
})
