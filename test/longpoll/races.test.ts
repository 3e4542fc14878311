// Polls racing sends (DESIGN.md §6): a client whose answers get lost repeats the poll
// with the same last_event_id and still gets every event exactly once, in order, while
// the events keep coming. Real MQTT sender, real HTTP polls, PostgreSQL and PGlite.
import t from 'tap'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { connectUser, startNode, type StoreKind } from '../helpers/node.js'
import { LongPollClient } from '../helpers/longpoll.js'

const SENDS = 1000
/** sends in flight at once */
const WINDOW = 8
const DEADLINE_MS = 90_000

for (const store of ['pg', 'pglite'] as const satisfies StoreKind[]) {
  t.test(`${store}: ${SENDS} sends racing polls whose every third answer is lost: each seq once, in order`, async (t) => {
    // sends are not rate limited today; should they be, this run is no abuse
    const node = await startNode(t, { store, env: { THREADLINE_SEND_RATE: '100000', THREADLINE_SEND_BURST: '100000' } })
    const [alice, bob] = [userId('alice'), userId('bob')]
    const conv = await createConversation(node, [alice, bob])
    const a = await connectUser(t, node, alice, 'phone')
    const lp = new LongPollClient(node, bob)
    await lp.open()
    const deadline = Date.now() + DEADLINE_MS

    let next = 0
    const sender = async (): Promise<void> => {
      while (next < SENDS && Date.now() < deadline) {
        const i = next++
        await a.publishAsync(`conv/${conv}/send`, text(`m${i}`, `message ${i}`), { qos: 1 })
      }
    }
    const sending = Promise.all(Array.from({ length: WINDOW }, sender))

    const seqs: number[] = []
    let answers = 0
    let lost = 0
    const misplaced: string[] = []
    while (seqs.length < SENDS && Date.now() < deadline) {
      const res = await lp.request(5)
      // a 410 would mean the backlog overflowed or the queue was lost
      if (res.status !== 200) {
        t.fail(`a poll answered ${res.status} ${JSON.stringify(res.body)}`)
        break
      }
      if (res.body.events.length === 0) continue
      // every third answer with events never reaches the client: it polls again from where it was
      if (++answers % 3 === 0) {
        lost++
        continue
      }
      const first = res.body.events[0]?.event_id
      if (first !== lp.lastEventId + 1) misplaced.push(`after ${lp.lastEventId} came ${String(first)}`)
      for (const e of res.body.events) seqs.push(e.seq as number)
      lp.lastEventId = res.body.last_event_id
    }
    await sending
    t.equal(next, SENDS, 'every send went out before the deadline')
    t.same(misplaced, [], 'every answer starts right after what the client acknowledged')
    t.ok(lost > 0, `${lost} of ${answers} answers were lost on the way`)
    t.equal(seqs.length, SENDS, 'as many events as sends')
    t.ok(seqs.every((s, i) => s === i + 1), 'seq 1 … 1000, each once, in order')
    t.same(await lp.poll(0), [], 'nothing after the last')
  })
}
