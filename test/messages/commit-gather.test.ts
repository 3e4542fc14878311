// THREADLINE_COMMIT_GATHER_MS end to end: a send to an idle node commits at once; sends
// that come soon after a commit wait for company and commit together, each PUBACKed and
// delivered in order.
import t from 'tap'
import { collect, connectUser, startNode } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/wait.js'

for (const store of ['pg', 'pglite'] as const) {
  t.test(`[${store}] a lone send commits at once; two sends soon after a commit share one batch`, async (t) => {
    // long enough that the second send surely comes within it; the batch still goes at its end
    const node = await startNode(t, { store, env: { THREADLINE_COMMIT_GATHER_MS: '50' } })
    const sizes: number[] = []
    node.telemetry.on('commit', (e) => sizes.push(e.size))
    const alice = userId('alice')
    const bob = userId('bob')
    const conv = await createConversation(node, [alice, bob], 'group')
    const a = await connectUser(t, node, alice, 'phone')
    const b = await connectUser(t, node, bob, 'phone')
    await b.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
    const events = collect<{ t: string, seq: number, client_msg_id: string }>(b, 3, (_topic, m) => m.t === 'event')

    await a.publishAsync(`conv/${conv}/send`, text('m1', 'first'), { qos: 1 })
    t.same(sizes, [1], 'the first send went alone, without waiting')

    const second = a.publishAsync(`conv/${conv}/send`, text('m2', 'second'), { qos: 1 })
    // m2 is waiting in the queue (no batch in flight): it gathers. m3 joins it through the
    // send path itself, as the HTTP route does, so nothing but the poll stands between them
    await waitFor(() => node.sends.pending === 1, 'the second send to wait for its batch', undefined, 1)
    const third = node.sends.send(bob, conv, JSON.parse(text('m3', 'third')) as unknown, { transport: 'http', since: performance.now() })
    await Promise.all([second, third])
    t.same(sizes, [1, 2], 'the two later sends committed in one batch')
    t.same((await events).map(e => [e.seq, e.client_msg_id]), [[1, 'm1'], [2, 'm2'], [3, 'm3']], 'delivered in commit order')
  })
}
