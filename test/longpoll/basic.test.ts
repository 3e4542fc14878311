// The long-poll routes on one node over real HTTP: a queue carries what user/<me>/inbox
// carries, acknowledgements drop what was processed, a lost answer is repeated whole.
import t from 'tap'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { connectUser, startNode, type StoreKind } from '../helpers/node.js'
import { LongPollClient } from '../helpers/longpoll.js'

for (const store of ['pg', 'pglite'] as const satisfies StoreKind[]) {
  t.test(`${store}: a queue gets the inbox's events; a repeated poll gets the same events again; an acknowledged one never`, async (t) => {
    const node = await startNode(t, { store })
    const [alice, bob] = [userId('alice'), userId('bob')]
    const conv = await createConversation(node, [alice, bob])
    const lp = new LongPollClient(node, bob)
    const opened = await lp.open()
    t.equal(opened.body.last_event_id, 0)
    t.equal(opened.body.queue_timeout_s, 600)
    const a = await connectUser(t, node, alice, 'phone')
    await a.publishAsync(`conv/${conv}/send`, text('m1', 'hello'), { qos: 1 })
    const first = await lp.request(5)
    t.equal(first.status, 200)
    t.match(first.body.events, [{ event_id: 1, t: 'event', conv_id: conv, seq: 1, sender_id: alice, text: 'hello' }])
    t.equal(first.body.last_event_id, 1)
    const again = await lp.request(5)
    t.same(again.body, first.body, 'the answer was lost: the same poll answers the same events')
    lp.lastEventId = first.body.last_event_id
    await a.publishAsync(`conv/${conv}/send`, text('m2', 'again'), { qos: 1 })
    const second = await lp.poll(5)
    t.match(second, [{ event_id: 2, seq: 2, text: 'again' }])
    t.same(await lp.poll(0), [], 'nothing after what was acknowledged')
  })
}
