// When a queue ends (DESIGN.md §6): nobody polled it for THREADLINE_LONGPOLL_QUEUE_TTL_S,
// its backlog passed THREADLINE_LONGPOLL_QUEUE_MAX, its owner deleted it, or the same
// device opened another. Its id then answers 410 queue_expired, and what it held is freed.
import t, { type Test } from 'tap'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { QUEUES_PER_USER } from '../../plugins/longpoll/index.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { connectUser, startNode } from '../helpers/node.js'
import { http, longPollStats, LongPollClient, untilStats } from '../helpers/longpoll.js'
import { waitFor, withTimeout } from '../helpers/wait.js'

interface Chat { alice: MqttClient, conv: string, bob: string }

async function chat (t: Parameters<typeof connectUser>[0], node: Threadline): Promise<Chat> {
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  return { alice: await connectUser(t, node, alice, 'phone'), conv, bob }
}

async function sendTexts (chat: Chat, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) await chat.alice.publishAsync(`conv/${chat.conv}/send`, text(`m${i}`, `message ${i}`), { qos: 1 })
}

async function expectExpired (t: Test, lp: LongPollClient, what: string): Promise<void> {
  const res = await lp.request(0)
  t.equal(res.status, 410, `${what}: 410`)
  t.match(res.body, { code: 'queue_expired', message: /expired/ }, `${what}: queue_expired`)
}

t.test('THREADLINE_LONGPOLL_QUEUE_TTL_S=1', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_LONGPOLL_QUEUE_TTL_S: '1', THREADLINE_LONGPOLL_LINGER_MS: '100' } })

  t.test('a queue polled again and again outlives its TTL; its held polls end within it', async (t) => {
    const c = await chat(t, node)
    const lp = new LongPollClient(node, c.bob)
    t.equal((await lp.open()).body.queue_timeout_s, 1)
    const until = Date.now() + 2500
    let polls = 0
    while (Date.now() < until) {
      const started = performance.now()
      t.same(await lp.poll(30), [], 'an empty answer')
      const ms = performance.now() - started
      // a poll held past the TTL would let the queue expire under it
      if (ms >= 1000) t.fail(`a poll was held ${ms.toFixed(0)} ms, past the 1 s TTL`)
      polls++
    }
    await sendTexts(c, 1, 1)
    t.match(await lp.poll(5), [{ event_id: 1, seq: 1 }], `alive after ${polls} polls over 2.5 s`)
  })

  t.test('a queue nobody polls expires; its id answers 410; its events are freed', async (t) => {
    const c = await chat(t, node)
    const lp = new LongPollClient(node, c.bob)
    await lp.open()
    await sendTexts(c, 1, 3)
    await untilStats(node, s => s.events >= 3, 'the events to be queued')
    // the node sweeps idle queues; until it does, a poll would find the queue idle past its TTL all the same
    await untilStats(node, s => s.queues === 0, 'every queue to expire')
    await expectExpired(t, lp, 'after the TTL')
    await expectExpired(t, lp, 'and again')
    await untilStats(node, s => s.devices === 0, 'no polling device to be counted')
    t.same(await longPollStats(node), { queues: 0, events: 0, held: 0, devices: 0 }, 'nothing is kept for an expired queue')
  })
})

t.test('THREADLINE_LONGPOLL_QUEUE_MAX=5', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_LONGPOLL_QUEUE_MAX: '5' } })

  t.test('a client that acknowledges keeps its queue past the bound; five unacknowledged are kept', async (t) => {
    const c = await chat(t, node)
    const lp = new LongPollClient(node, c.bob)
    await lp.open()
    // as a client does, a poll is always out: its last_event_id acknowledges what came before
    for (const [from, to] of [[1, 4], [5, 8], [9, 12]] as const) {
      const got = lp.collect(4)
      await untilStats(node, s => s.held === 1, 'the poll to be held')
      await sendTexts(c, from, to)
      t.same((await got).map(e => e.seq), [from, from + 1, from + 2, from + 3], `seq ${from}–${to}`)
    }
    t.same(await lp.poll(0), [], 'all twelve acknowledged')
    await sendTexts(c, 13, 17)
    t.equal((await lp.request(0)).body.events.length, 5, 'five waiting: at the bound, not past it')
    t.equal((await lp.request(0)).body.events.length, 5, 'still there when not acknowledged')
  })

  t.test('a sixth unacknowledged event ends the queue', async (t) => {
    const c = await chat(t, node)
    const lp = new LongPollClient(node, c.bob)
    await lp.open()
    const { queues } = await longPollStats(node)
    await sendTexts(c, 1, 5)
    await untilStats(node, s => s.events >= 5, 'five events queued')
    t.equal((await lp.request(0)).body.events.length, 5, 'seen but not acknowledged')
    await sendTexts(c, 6, 6)
    await untilStats(node, s => s.queues === queues - 1, 'the queue to expire')
    await expectExpired(t, lp, 'past the bound')
  })
})

t.test('DELETE, a second queue of the same device, the per-user bound', async (t) => {
  const node = await startNode(t)

  t.test('DELETE ends a queue at once (a held poll answers 410); a second DELETE is 404', async (t) => {
    const c = await chat(t, node)
    const lp = new LongPollClient(node, c.bob)
    await lp.open()
    const held = lp.request(30)
    await untilStats(node, s => s.held === 1, 'the poll to be held')
    const deleted = await http(node, lp.bearer, 'DELETE', `/v1/events/queue/${lp.queueId}`)
    t.equal(deleted.status, 204)
    t.equal(deleted.body, null, 'no body')
    t.match(await withTimeout(held, 'the held poll to answer'), { status: 410, body: { code: 'queue_expired' } }, 'the held poll ends with the queue')
    await expectExpired(t, lp, 'after DELETE')
    t.match(await http(node, lp.bearer, 'DELETE', `/v1/events/queue/${lp.queueId}`), { status: 404, body: { code: 'not_found' } }, 'DELETE again: 404')
    await sendTexts(c, 1, 1)
    await expectExpired(t, lp, 'an event after DELETE does not bring it back')
  })

  t.test('the same device opening a second queue ends the first; another device\'s queue stays', async (t) => {
    const c = await chat(t, node)
    const first = new LongPollClient(node, c.bob)
    await first.open({ device: 'browser' })
    const tablet = new LongPollClient(node, c.bob)
    await tablet.open({ device: 'tablet' })
    const second = new LongPollClient(node, c.bob)
    await second.open({ device: 'browser' })
    t.not(second.queueId, first.queueId, 'a new id')
    await expectExpired(t, first, 'the first queue of the device')
    await sendTexts(c, 1, 1)
    t.match(await second.poll(5), [{ event_id: 1, seq: 1 }], 'the second queue gets the event')
    t.match(await tablet.poll(5), [{ event_id: 1, seq: 1 }], 'so does the other device\'s')
  })

  t.test(`a queue beyond a user's ${QUEUES_PER_USER} ends the least recently polled one`, async (t) => {
    const c = await chat(t, node)
    const queues: LongPollClient[] = []
    for (let i = 0; i < QUEUES_PER_USER; i++) {
      const lp = new LongPollClient(node, c.bob)
      await lp.open({ device: `d${i}` })
      queues.push(lp)
    }
    // d1 polled first, the others (the first opened among them) at least a millisecond later
    const [d0, d1, ...rest] = queues as [LongPollClient, LongPollClient, ...LongPollClient[]]
    t.equal((await d1.request(0)).status, 200)
    const polledAt = Date.now()
    await waitFor(() => Date.now() > polledAt, 'the clock to move on', 1000, 1)
    for (const lp of [d0, ...rest]) t.equal((await lp.request(0)).status, 200)
    const newest = new LongPollClient(node, c.bob)
    await newest.open({ device: 'one-more' })
    await expectExpired(t, d1, 'the least recently polled')
    const others = await Promise.all([d0, ...rest, newest].map(lp => lp.request(0)))
    t.same(others.map(r => r.status), others.map(() => 200), 'the others live on')
  })
})
