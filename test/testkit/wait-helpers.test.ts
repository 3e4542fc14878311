// The tests' wait helpers (test/helpers/) end: a wait that is never satisfied fails in
// bounded time with a message naming what it waited for, instead of hanging the file.
import t from 'tap'
import { closed, nextMessage, suback } from '../helpers/access.js'
import { collect, connectUser, startNode } from '../helpers/node.js'
import { WaitTimeout, waitFor, withTimeout } from '../helpers/wait.js'

const node = await startNode(t, { store: 'pglite' })

/** Fails the test if `p` has not settled after `ms` (the guard for helpers without a timeout). */
function settlesWithin<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms: the helper has no timeout`)), ms) })])
    .finally(() => clearTimeout(timer))
}

t.test('collect and nextMessage give up, saying what they awaited and how much came', async (t) => {
  const phone = await connectUser(t, node, 'wendy', 'phone')
  t.same(await suback(phone, 'user/wendy/inbox'), [1])
  await t.rejects(settlesWithin(collect(phone, 2, undefined, 200), 2000), { name: 'WaitTimeout', message: /timed out after 200 ms waiting for 2 matching messages at wendy:phone \(0 came\)/ })
  await t.rejects(settlesWithin(nextMessage(phone, 'user/wendy/inbox', 200), 2000), { name: 'WaitTimeout', message: /a message on user\/wendy\/inbox at wendy:phone/ })
  await t.rejects(settlesWithin(closed(phone, 200), 2000), { name: 'WaitTimeout', message: /the broker to close wendy:phone's connection/ })
  t.equal(phone.listenerCount('message'), 0, 'the given-up waits left no listener behind')
})

t.test('withTimeout and waitFor', async (t) => {
  t.equal(await withTimeout(Promise.resolve(7), 'a number', 100), 7)
  await t.rejects(withTimeout(new Promise(() => {}), 'nothing', 50), new WaitTimeout('nothing', 50))
  let n = 0
  await waitFor(() => ++n === 3, 'the third look', 1000, 1)
  t.equal(n, 3)
  await t.rejects(waitFor(() => false, 'a condition that never holds', 50, 5), { message: 'timed out after 50 ms waiting for a condition that never holds' })
})
