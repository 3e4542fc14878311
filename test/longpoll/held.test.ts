// Held polls (DESIGN.md §6): a poll with nothing to answer waits until an event comes
// (and answers at once then) or its timeout passes (an empty list, nothing acknowledged
// beyond what the client said); a client that hangs up leaves nothing held; a stopping
// node answers its held polls instead of keeping them until their timeout.
import { get as httpGet } from 'node:http'
import t from 'tap'
import type { Threadline } from '../../broker/server.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { connectUser, startNode } from '../helpers/node.js'
import { longPollStats, LongPollClient, untilStats } from '../helpers/longpoll.js'
import { withTimeout } from '../helpers/wait.js'

const untilHeld = (node: Threadline, n: number): Promise<void> => untilStats(node, s => s.held === n, `${n} held polls`)

const node = await startNode(t)

async function chat (): Promise<{ conv: string, send: (id: string) => Promise<unknown>, lp: LongPollClient }> {
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  const lp = new LongPollClient(node, bob)
  await lp.open()
  return { conv, send: (id) => a.publishAsync(`conv/${conv}/send`, text(id, id), { qos: 1 }), lp }
}

t.test('a held poll answers as soon as an event comes, long before its timeout', async (t) => {
  const { conv, send, lp } = await chat()
  for (const round of [1, 2, 3]) {
    const poll = lp.request(30)
    await untilHeld(node, 1)
    const sent = performance.now()
    await send(`m${round}`)
    const res = await poll
    const ms = performance.now() - sent
    t.equal(res.status, 200)
    t.match(res.body.events, [{ event_id: round, conv_id: conv, seq: round }], `round ${round}: the event`)
    // the real figure is the bench's; this only tells a woken poll from one that waited out its timeout
    t.ok(ms < 1000, `round ${round}: answered ${ms.toFixed(1)} ms after the send`)
    lp.lastEventId = res.body.last_event_id
  }
})

t.test('a poll with nothing to answer ends at its timeout with an empty list and the same last_event_id', async (t) => {
  const { send, lp } = await chat()
  await send('m1')
  t.equal((await lp.poll(0)).length, 1)
  t.equal(lp.lastEventId, 1)
  const started = performance.now()
  const res = await lp.request(1)
  const ms = performance.now() - started
  t.equal(res.status, 200)
  t.same(res.body, { events: [], last_event_id: 1 }, 'nothing new; last_event_id where the client was')
  t.ok(ms >= 950 && ms < 5000, `held ${ms.toFixed(0)} ms for a timeout of 1 s`)
  const now = performance.now()
  t.same((await lp.request(0)).body, { events: [], last_event_id: 1 }, 'timeout=0 answers at once')
  t.ok(performance.now() - now < 500, 'timeout=0 did not wait')
  t.equal((await longPollStats(node)).held, 0, 'nothing held after')
})

t.test('a client that hangs up a held poll leaves nothing held; the queue goes on', async (t) => {
  const { send, lp } = await chat()
  // node:http on a socket of its own: fetch's pool would open a spare connection after the
  // abort, which the node's HTTP server then waits for at close (Node's headersTimeout)
  const req = httpGet({
    host: '127.0.0.1',
    port: node.httpPort,
    path: `/v1/events?queue_id=${lp.queueId}&last_event_id=0&timeout=30`,
    headers: { authorization: `Bearer ${lp.bearer}` },
    agent: false
  })
  const hungUp = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => reject(new Error(`the poll answered ${String(res.statusCode)} before the hang-up`)))
    req.on('error', () => resolve())
  })
  await untilHeld(node, 1)
  req.destroy()
  await hungUp
  await untilHeld(node, 0)
  await send('m1')
  t.match(await lp.poll(5), [{ event_id: 1, seq: 1 }], 'the event the hung-up poll would have had waits for the next poll')
})

t.test('a node that stops answers its held polls at once', async (t) => {
  const own = await startNode(t)
  const [alice, bob] = [userId('alice'), userId('bob')]
  await createConversation(own, [alice, bob])
  const lp = new LongPollClient(own, bob)
  await lp.open()
  const polls = [lp.request(60), lp.request(60)]
  await untilHeld(own, 2)
  const started = performance.now()
  const closing = own.close()
  const answers = await withTimeout(Promise.all(polls), 'the held polls to be answered at shutdown', 5000)
  const ms = performance.now() - started
  for (const res of answers) {
    if (res.status === 200) t.same(res.body, { events: [], last_event_id: 0 }, 'an empty answer: the client polls again elsewhere')
    else t.match(res, { status: 503, body: { code: 'unavailable' } }, 'or 503: the client polls again elsewhere')
  }
  t.ok(ms < 2000, `answered ${ms.toFixed(0)} ms into the shutdown, not at the 60 s timeout`)
  await withTimeout(closing, 'the node to stop', 5000)
})
