// Long-poll queues live in Redis in a cluster; a Redis that stops answering (hung, its
// connections left open) must cost the client a retry or a resync, never an event it
// does not know it missed. Both nodes reach Redis through a proxy that holds every byte
// while "hung". While it hangs: polls and new queues answer 503 within a bound, the nodes
// stay up and MQTT sends still commit. Once Redis answers again, a queue that an append
// failed for answers 410 queue_expired (the client resyncs from history) before it gives
// any later event; queues that missed nothing go on, and a new queue works.
import t from 'tap'
import type { AedesPublishPacket } from 'aedes'
import { redisBehindProxy } from '../helpers/cluster.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { http, LongPollClient, type HttpAnswer, type PollAnswer } from '../helpers/longpoll.js'
import { connectUser, startNode } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { withTimeout } from '../helpers/wait.js'

const REDIS_TIMEOUT_MS = 500
/** a request answered by a hung Redis's timeout, with room for a loaded 2-core machine */
const BOUND_MS = 6 * REDIS_TIMEOUT_MS

async function timed<T> (work: Promise<T>): Promise<[T, number]> {
  const started = Date.now()
  const result = await work
  return [result, Date.now() - started]
}

// How the hang ends: Redis goes on where it stopped (what the proxy held reaches it late,
// appends that timed out included), or its connections are reset (what the proxy held
// is lost, as when a hung Redis is restarted).
for (const ending of ['resume', 'reset'] as const) {
  t.test(`a hung Redis (ending: ${ending}): polls answer 503 in bounded time, sends commit, and a queue that missed an event expires rather than skip it`, async (t) => {
    const db = await createDatabase()
    t.teardown(db.drop)
    const { redisUrl, proxy } = await redisBehindProxy(t)
    const env = { REDIS_URL: proxy.urlFor(redisUrl), THREADLINE_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS) }
    const a = await startNode(t, { databaseUrl: db.url, env })
    const b = await startNode(t, { databaseUrl: db.url, env })

    const [alice, bob, dave] = [userId('alice'), userId('bob'), userId('dave')]
    const conv = await createConversation(a, [alice, bob])
    const alicePhone = await connectUser(t, a, alice, 'phone')
    const bobLp = new LongPollClient(b, bob)
    await bobLp.open()
    // dave is in no conversation: nothing is appended to his queue, so nothing can fail for it
    const daveLp = new LongPollClient(b, dave)
    await daveLp.open()

    await alicePhone.publishAsync(`conv/${conv}/send`, text('m1', 'before'), { qos: 1 })
    t.match(await bobLp.collect(1), [{ t: 'event', conv_id: conv, seq: 1, event_id: 1 }], 'bob gets m1 on B, appended by A')

    // A appends bob's inbox packets when its broker publishes them: the plugin's listener was there first
    const bobsInboxOnA: AedesPublishPacket[] = []
    a.broker.on('publish', (packet) => { if (packet.topic === `user/${bob}/inbox`) bobsInboxOnA.push(packet) })

    // — Redis stops answering; its connections stay open —
    proxy.hang()

    const [held, heldMs] = await timed(bobLp.request(30))
    t.match(held, { status: 503, body: { code: 'unavailable' } }, 'a poll answers 503 unavailable')
    t.ok(heldMs < BOUND_MS, `within a bounded time (${heldMs} ms; Redis timeout ${REDIS_TIMEOUT_MS} ms)`)
    const [opened, openMs] = await timed(http(b, bobLp.bearer, 'POST', '/v1/events/queue', { device_id: 'tablet' }))
    t.match(opened, { status: 503, body: { code: 'unavailable' } }, 'opening a queue answers 503 unavailable')
    t.ok(openMs < BOUND_MS, `within a bounded time (${openMs} ms)`)

    const [, sendMs] = await timed(withTimeout((async () => {
      await alicePhone.publishAsync(`conv/${conv}/send`, text('m2', 'hung 1'), { qos: 1 })
      await alicePhone.publishAsync(`conv/${conv}/send`, text('m3', 'hung 2'), { qos: 1 })
    })(), 'PUBACKs of m2 and m3 while Redis hangs'))
    t.pass(`m2 and m3 are PUBACKed while Redis hangs (${sendMs} ms)`)
    const stored = await a.store.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE conv_id = $1', [conv])
    t.equal(stored[0]?.n, 3, 'and committed')

    // A's appends of m2 and m3 went out when its broker published them; a poll on A sent
    // after them on the same Redis connection times out after them: once it has, they failed
    await withTimeout(new Promise<void>((resolve) => {
      const check = (): void => { if (bobsInboxOnA.length >= 2) { a.broker.off('publish', check); resolve() } }
      a.broker.on('publish', check)
      check()
    }), 'A publishing m2 and m3 to bob\'s inbox')
    bobLp.node = a
    const [onA, onAMs] = await timed(bobLp.request(0))
    t.match(onA, { status: 503, body: { code: 'unavailable' } }, `a poll on A answers 503 as well (${onAMs} ms)`)
    for (const node of [a, b]) t.equal((await fetch(`http://127.0.0.1:${node.httpPort}/healthz`)).status, 200, 'the nodes stay up')

    // — Redis answers again —
    if (ending === 'resume') {
      proxy.resume()
    } else {
      proxy.cut()
      proxy.restore()
    }
    // the first send after the hang: A's first append that can succeed
    await withTimeout(alicePhone.publishAsync(`conv/${conv}/send`, text('m4', 'after'), { qos: 1 }), 'PUBACK of m4 after the hang')

    // Bob polls as an app would: 503 → again; events → processed; 410 → resync. Whatever he
    // is given before the 410 must follow m1 without a hole (an append run late, once the
    // proxy let it through, is fine); m4 after a hole would be a silent gap.
    const seen: number[] = [1]
    const expired = async (lp: LongPollClient, where: string): Promise<HttpAnswer<PollAnswer>> => {
      return await withTimeout((async () => {
        for (;;) {
          const res = await lp.request(5)
          if (res.status === 503) continue
          if (res.status !== 200) return res
          for (const e of res.body.events) {
            if (e.t !== 'event') continue
            t.equal(e.seq, (seen.at(-1) as number) + 1, `${where}: seq ${String(e.seq)} follows seq ${String(seen.at(-1))}`)
            seen.push(e.seq as number)
          }
          lp.lastEventId = res.body.last_event_id
        }
      })(), `bob's queue answering 410 on ${where}`, 20_000)
    }
    bobLp.node = b
    t.match(await expired(bobLp, 'B'), { status: 410, body: { code: 'queue_expired' } }, 'bob\'s queue answers 410 queue_expired on B')
    bobLp.node = a
    t.match(await expired(bobLp, 'A'), { status: 410, body: { code: 'queue_expired' } }, 'and on A')
    t.comment(`seqs bob got before the 410: ${seen.join(', ')}`)

    t.match(await withTimeout((async () => {
      for (;;) {
        const res = await daveLp.request(0)
        if (res.status !== 503) return res
      }
    })(), 'dave\'s poll after the hang'), { status: 200, body: { events: [], last_event_id: 0 } }, 'dave\'s queue missed nothing, and lives on')

    // the client's resync: a new queue, then the history it missed
    const fresh = new LongPollClient(b, bob)
    await fresh.open()
    await alicePhone.publishAsync(`conv/${conv}/send`, text('m5', 'new queue'), { qos: 1 })
    t.match(await fresh.collect(1), [{ t: 'event', seq: 5, event_id: 1, client_msg_id: 'm5' }], 'a new queue gets what follows')
    const history = await http<{ events: Array<{ seq: number }> }>(b, bobLp.bearer, 'GET', `/v1/conversations/${conv}/events?after_seq=${String(seen.at(-1))}`)
    t.same(history.body.events.map(e => e.seq).filter(s => s <= 4), Array.from({ length: 4 - (seen.at(-1) as number) }, (_, k) => (seen.at(-1) as number) + 1 + k),
      'and the history API has every event the expired queue did not give')
  })
}
