// The QueueStore contract (plugins/longpoll/queue-store.ts) as both stores keep it: in this
// node's memory and in Redis (the Lua scripts), one suite for both, so that a client sees
// the same queue on one node as in a cluster. Times are given (`now`), so nothing here
// waits for a clock; only the Redis store's wakes travel (pub/sub), and are awaited.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { createLogger } from '../../broker/logger.js'
import { inboxTopic, presenceTopic, typingTopic } from '../../core/topics.js'
import { MemoryQueueStore } from '../../plugins/longpoll/memory-store.js'
import { type PollResult, type QueueLimits, type QueueStore, queuePayloadOf } from '../../plugins/longpoll/queue-store.js'
import { RedisQueueStore } from '../../plugins/longpoll/redis-store.js'
import { leaseRedisUrl } from '../helpers/redis-db.js'
import { waitFor } from '../helpers/wait.js'

const LIMITS: QueueLimits = { ttlMs: 1000, maxEvents: 5, maxBytes: 1000, perUser: 3, tombstoneMs: 3_600_000 }
// after Date.now(): the memory store's delete stamps its tombstone with the real clock
const T0 = Date.now() + 1_000_000

interface Subject {
  readonly store: QueueStore
  /** every queue id the wake listener heard, in order */
  readonly wakes: string[]
}

type Make = (limits?: Partial<QueueLimits>) => Promise<Subject>

async function drivers (t: Test): Promise<Array<[string, Make]>> {
  const url = await leaseRedisUrl(t)
  const silent = createLogger('silent')
  const listen = (store: QueueStore): Subject => {
    const wakes: string[] = []
    store.onWake(id => wakes.push(id))
    return { store, wakes }
  }
  return [
    ['memory', async (limits) => listen(new MemoryQueueStore({ ...LIMITS, ...limits }))],
    ['redis', async (limits) => {
      const redis = new Redis(url, { commandTimeout: 5000 })
      const subscriber = new Redis(url)
      t.teardown(() => { redis.disconnect(); subscriber.disconnect() })
      await redis.flushdb() // each test starts from no queues
      const subject = listen(new RedisQueueStore(redis, subscriber, { ...LIMITS, ...limits }, silent))
      // answered after the store's SUBSCRIBE (one connection, in order): wakes are heard from here on
      await subscriber.ping()
      return subject
    }]
  ]
}

let run = 0
/** a queue id as the routes make them: 43 characters */
const qid = (name: string): string => `${name}-${++run}`.padEnd(43, 'x')
const user = (name: string): string => `${name}-${run}`
const ev = (n: number, pad = 0): Buffer => Buffer.from(JSON.stringify({ t: 'event', n, pad: 'p'.repeat(pad) }))
const ids = (r: PollResult): number[] => (r.kind === 'events' ? r.events.map(e => e.id) : [])
const bodies = (r: PollResult): unknown[] => (r.kind === 'events' ? r.events.map(e => JSON.parse(e.payload.toString()) as unknown) : [])

t.test('the QueueStore contract, in memory and in Redis', async (t) => {
  for (const [name, make] of await drivers(t)) {
    t.test(name, async (t) => {
      t.test('events get the ids 1, 2, 3 …; a poll acknowledges up to its id and gives what follows, as often as asked', async (t) => {
        const { store } = await make()
        const [bob, q] = [user('bob'), qid('q')]
        await store.create(q, { userId: bob, deviceId: 'browser', topics: [inboxTopic(bob)] }, T0)
        t.same(await store.poll(q, bob, 0, 500, T0), { kind: 'events', events: [], lastEventId: 0 }, 'a new queue is empty')
        for (let n = 1; n <= 3; n++) store.append(inboxTopic(bob), ev(n), T0)
        const first = await store.poll(q, bob, 0, 500, T0 + 1)
        t.same(ids(first), [1, 2, 3])
        t.same(bodies(first), [1, 2, 3].map(n => ({ t: 'event', n, pad: '' })), 'each payload as published')
        t.equal(first.kind === 'events' && first.lastEventId, 3)
        t.same(await store.poll(q, bob, 0, 500, T0 + 2), first, 'a repeated poll (a lost answer) gets the same events')
        const page = await store.poll(q, bob, 0, 2, T0 + 3)
        t.same(ids(page), [1, 2], 'a limit gives the oldest first')
        t.equal(page.kind === 'events' && page.lastEventId, 3, 'and says how far the queue goes')
        t.same(await store.stats(), { queues: 1, events: 3 })
        t.same(ids(await store.poll(q, bob, 2, 500, T0 + 4)), [3], 'acknowledged events are not given again')
        t.same(await store.stats(), { queues: 1, events: 1 }, 'and are dropped')
        t.same(ids(await store.poll(q, bob, 1, 500, T0 + 5)), [3], 'an older id acknowledges nothing more, and brings nothing back')
        store.append(inboxTopic(bob), ev(4), T0 + 6)
        t.same(ids(await store.poll(q, bob, 3, 500, T0 + 7)), [4], 'numbering goes on after an acknowledgement')
        t.same(await store.poll(q, bob, 4, 500, T0 + 8), { kind: 'events', events: [], lastEventId: 4 })
        t.same(await store.stats(), { queues: 1, events: 0 })
      })

      t.test('follow() replaces what a queue follows; its events and ids stay; not_found and expired as poll tells them', async (t) => {
        const { store } = await make()
        const [bob, eve, q] = [user('bob'), user('eve'), qid('q')]
        const [a, b] = [typingTopic('a'), typingTopic('b')]
        await store.create(q, { userId: bob, deviceId: 'browser', topics: [inboxTopic(bob), a] }, T0)
        store.append(inboxTopic(bob), ev(1), T0)
        store.append(a, Buffer.from('{"user_id":"x","typing":true}'), T0)
        t.equal(await store.follow(q, bob, [inboxTopic(bob), b], T0 + 1), 'ok')
        store.append(a, Buffer.from('{"user_id":"x","typing":false}'), T0 + 2)
        store.append(b, Buffer.from('{"user_id":"y","typing":true}'), T0 + 2)
        store.append(inboxTopic(bob), ev(2), T0 + 2)
        const r = await store.poll(q, bob, 0, 500, T0 + 3)
        t.same(ids(r), [1, 2, 3, 4], 'what came before stays, numbering goes on')
        t.same(bodies(r).slice(1, 3), [{ t: 'typing', conv_id: 'a', user_id: 'x', typing: true }, { t: 'typing', conv_id: 'b', user_id: 'y', typing: true }],
          'a topic no longer followed brings nothing more; the new one does')
        t.equal(await store.follow(q, eve, [inboxTopic(eve)], T0 + 3), 'not_found', 'another user\'s queue')
        t.equal(await store.follow(qid('nobody'), bob, [inboxTopic(bob)], T0 + 3), 'not_found')
        t.equal(await store.follow(q, bob, [inboxTopic(bob)], T0 + 3 + LIMITS.ttlMs + 1), 'expired', 'an idle queue expires')
        t.same(await store.poll(q, bob, 0, 500, T0 + 3 + LIMITS.ttlMs + 2), { kind: 'expired' })
        t.same(await store.stats(), { queues: 0, events: 0 })
      })

      t.test('an id past the last given is `ahead`, and changes nothing', async (t) => {
        const { store } = await make()
        const [bob, q] = [user('bob'), qid('q')]
        await store.create(q, { userId: bob, deviceId: 'browser', topics: [inboxTopic(bob)] }, T0)
        store.append(inboxTopic(bob), ev(1), T0)
        store.append(inboxTopic(bob), ev(2), T0)
        t.same(await store.poll(q, bob, 3, 500, T0 + LIMITS.ttlMs), { kind: 'ahead', lastEventId: 2 })
        t.same(await store.poll(q, bob, 0, 500, T0 + LIMITS.ttlMs + 1), { kind: 'expired' }, 'an `ahead` poll does not count as a poll: idle since T0')
        const r = qid('r')
        await store.create(r, { userId: bob, deviceId: 'other', topics: [inboxTopic(bob)] }, T0)
        store.append(inboxTopic(bob), ev(3), T0)
        t.same(await store.poll(r, bob, 2, 500, T0), { kind: 'ahead', lastEventId: 1 })
        t.same(ids(await store.poll(r, bob, 0, 500, T0)), [1], 'and acknowledges nothing')
      })

      t.test('another user\'s queue and an unknown id are the same not_found; delete says false to both', async (t) => {
        const { store } = await make()
        const [bob, eve, q] = [user('bob'), user('eve'), qid('q')]
        await store.create(q, { userId: bob, deviceId: 'browser', topics: [inboxTopic(bob)] }, T0)
        store.append(inboxTopic(bob), ev(1), T0)
        t.same(await store.poll(q, eve, 0, 500, T0), { kind: 'not_found' })
        t.same(await store.poll(qid('nobody'), bob, 0, 500, T0), { kind: 'not_found' })
        t.equal(await store.delete(q, eve), false)
        t.equal(await store.delete(qid('nobody'), bob), false)
        t.same(ids(await store.poll(q, bob, 0, 500, T0)), [1], 'the queue is untouched')
      })

      t.test('a queue nobody polled for the TTL expires: at its poll, at an append, at a sweep; a touch or a poll keeps it', async (t) => {
        const { store, wakes } = await make()
        const bob = user('bob')
        const [atPoll, atAppend, atSweep, touched, fresh] = [qid('poll'), qid('append'), qid('sweep'), qid('touched'), qid('fresh')]
        await store.create(atPoll, { userId: bob, deviceId: 'd1', topics: [inboxTopic(bob)] }, T0)
        await store.create(atAppend, { userId: bob, deviceId: 'd2', topics: [typingTopic('c1')] }, T0)
        await store.create(atSweep, { userId: bob, deviceId: 'd3', topics: [] }, T0)
        t.same(ids(await store.poll(atPoll, bob, 0, 500, T0 + LIMITS.ttlMs)), [], 'idle for exactly the TTL: still live')
        t.same(await store.poll(atPoll, bob, 0, 500, T0 + 2 * LIMITS.ttlMs + 1), { kind: 'expired' }, 'idle past it: expired')

        store.append(typingTopic('c1'), Buffer.from(`{"user_id":"${bob}","typing":true}`), T0 + LIMITS.ttlMs + 1)
        // polled "at T0", when it was not idle yet: only the append can have ended it
        t.same(await store.poll(atAppend, bob, 0, 500, T0), { kind: 'expired' }, 'an append to an idle queue expires it')

        const alice = user('alice')
        await store.create(touched, { userId: alice, deviceId: 'd1', topics: [] }, T0)
        await store.create(fresh, { userId: alice, deviceId: 'd2', topics: [] }, T0 + LIMITS.ttlMs)
        await store.touch(touched, T0 + LIMITS.ttlMs - 1)
        await store.sweep(T0 + LIMITS.ttlMs + 1)
        t.same(await store.poll(atSweep, bob, 0, 500, T0), { kind: 'expired' }, 'the sweep expires what is idle')
        t.equal((await store.poll(touched, alice, 0, 500, T0 + LIMITS.ttlMs + 2)).kind, 'events', 'a touch counts as a poll')
        t.equal((await store.poll(fresh, alice, 0, 500, T0 + LIMITS.ttlMs + 2)).kind, 'events', 'a younger queue stays')
        t.same(await store.stats(), { queues: 2, events: 0 })
        await waitFor(() => [atPoll, atAppend, atSweep].every(q => wakes.includes(q)), 'a wake for each expiry')
        t.notOk(wakes.includes(touched) || wakes.includes(fresh), 'live queues were not woken')
      })

      t.test('a backlog past maxEvents expires the queue; acknowledged events make room', async (t) => {
        const { store } = await make()
        const bob = user('bob')
        const [kept, over] = [qid('kept'), qid('over')]
        await store.create(kept, { userId: bob, deviceId: 'd1', topics: [inboxTopic(bob)] }, T0)
        for (let n = 1; n <= LIMITS.maxEvents; n++) store.append(inboxTopic(bob), ev(n), T0)
        t.same(ids(await store.poll(kept, bob, LIMITS.maxEvents, 500, T0)), [], `${LIMITS.maxEvents} held: live, and all acknowledged`)
        for (let n = 1; n <= LIMITS.maxEvents; n++) store.append(inboxTopic(bob), ev(n), T0)
        t.same(ids(await store.poll(kept, bob, LIMITS.maxEvents, 500, T0)), [6, 7, 8, 9, 10], 'room again after the acknowledgement')
        await store.create(over, { userId: bob, deviceId: 'd2', topics: [inboxTopic(bob)] }, T0)
        for (let n = 1; n <= LIMITS.maxEvents + 1; n++) store.append(inboxTopic(bob), ev(n), T0)
        t.same(await store.poll(over, bob, 0, 500, T0), { kind: 'expired' }, `event ${LIMITS.maxEvents + 1} unacknowledged: expired`)
        t.same(await store.poll(kept, bob, 10, 500, T0), { kind: 'expired' }, 'the first queue too (5 + 1 unacknowledged)')
        t.same(await store.stats(), { queues: 0, events: 0 }, 'an expired queue holds nothing')
      })

      t.test('a backlog past maxBytes expires the queue; acknowledged events give their bytes back', async (t) => {
        const { store } = await make()
        const [bob, q] = [user('bob'), qid('q')]
        const big = (n: number): Buffer => ev(n, 300 - ev(n).length)
        t.equal(big(1).length, 300)
        await store.create(q, { userId: bob, deviceId: 'd1', topics: [inboxTopic(bob)] }, T0)
        for (let n = 1; n <= 3; n++) store.append(inboxTopic(bob), big(n), T0)
        t.same(ids(await store.poll(q, bob, 3, 500, T0)), [], '900 bytes held: live')
        for (let n = 4; n <= 6; n++) store.append(inboxTopic(bob), big(n), T0)
        t.same(ids(await store.poll(q, bob, 3, 500, T0)), [4, 5, 6], '900 bytes again, after 900 acknowledged: live')
        store.append(inboxTopic(bob), big(7), T0)
        t.same(await store.poll(q, bob, 3, 500, T0), { kind: 'expired' }, '1200 bytes: expired')
      })

      t.test('a user holds at most perUser queues: a new device ends the least recently polled one', async (t) => {
        const { store, wakes } = await make()
        const [bob, carol] = [user('bob'), user('carol')]
        const [d1, d2, d3, d4, other] = [qid('d1'), qid('d2'), qid('d3'), qid('d4'), qid('carol')]
        await store.create(other, { userId: carol, deviceId: 'd1', topics: [] }, T0)
        await store.create(d1, { userId: bob, deviceId: 'd1', topics: [] }, T0)
        await store.create(d2, { userId: bob, deviceId: 'd2', topics: [] }, T0 + 1)
        await store.create(d3, { userId: bob, deviceId: 'd3', topics: [] }, T0 + 2)
        await store.poll(d1, bob, 0, 500, T0 + 20)
        await store.poll(d3, bob, 0, 500, T0 + 10)
        await store.poll(d2, bob, 0, 500, T0 + 5) // polled last, longest ago
        await store.create(d4, { userId: bob, deviceId: 'd4', topics: [] }, T0 + 30)
        t.same(await store.poll(d2, bob, 0, 500, T0 + 31), { kind: 'expired' }, 'the least recently polled ends')
        for (const q of [d1, d3, d4]) t.equal((await store.poll(q, bob, 0, 500, T0 + 31)).kind, 'events', 'the others stay')
        t.equal((await store.poll(other, carol, 0, 500, T0 + 31)).kind, 'events', 'another user\'s queues do not count')
        t.same(await store.stats(), { queues: 4, events: 0 })
        await waitFor(() => wakes.includes(d2), 'the wake of the evicted queue')
      })

      t.test('a second queue of the same device replaces the first', async (t) => {
        const { store, wakes } = await make()
        const bob = user('bob')
        const [first, second] = [qid('first'), qid('second')]
        await store.create(first, { userId: bob, deviceId: 'browser', topics: [inboxTopic(bob)] }, T0)
        store.append(inboxTopic(bob), ev(1), T0)
        await store.create(second, { userId: bob, deviceId: 'browser', topics: [inboxTopic(bob)] }, T0 + 1)
        store.append(inboxTopic(bob), ev(2), T0 + 2)
        t.same(await store.poll(first, bob, 0, 500, T0 + 3), { kind: 'expired' })
        const got = await store.poll(second, bob, 0, 500, T0 + 3)
        t.same(ids(got), [1], 'the new queue starts at 1, with what came after it')
        t.same(bodies(got), [{ t: 'event', n: 2, pad: '' }])
        t.same(await store.stats(), { queues: 1, events: 1 })
        await waitFor(() => wakes.includes(first), 'the wake of the replaced queue')
      })

      t.test('an ended queue answers expired to its owner and not_found to anyone else; delete ends it once', async (t) => {
        const { store, wakes } = await make()
        const [bob, eve, q] = [user('bob'), user('eve'), qid('q')]
        await store.create(q, { userId: bob, deviceId: 'browser', topics: [inboxTopic(bob)] }, T0)
        t.equal(await store.delete(q, bob), true)
        t.same(await store.poll(q, bob, 0, 500, T0), { kind: 'expired' })
        t.same(await store.poll(q, eve, 0, 500, T0), { kind: 'not_found' }, 'the tombstone says nothing to another user')
        t.equal(await store.delete(q, bob), false, 'an ended queue is not ended twice')
        store.append(inboxTopic(bob), ev(1), T0)
        t.same(await store.stats(), { queues: 0, events: 0 }, 'an ended queue gets nothing')
        t.same(await store.poll(q, bob, 0, 500, T0 + 1), { kind: 'expired' })
        await waitFor(() => wakes.includes(q), 'the wake of the ended queue')
        await store.touch(q, T0 + 2)
        await store.sweep(T0 + 10 * LIMITS.ttlMs)
        t.same(await store.poll(q, bob, 0, 500, T0 + 3), { kind: 'expired' }, 'touch and sweep leave a tombstone alone')
      })

      t.test('the wake listener hears each queue that got an event, and no other', async (t) => {
        const { store, wakes } = await make()
        const [bob, alice] = [user('bob'), user('alice')]
        const [inbox, typing, presence, marker] = [qid('inbox'), qid('typing'), qid('presence'), qid('marker')]
        await store.create(inbox, { userId: bob, deviceId: 'd1', topics: [inboxTopic(bob)] }, T0)
        await store.create(typing, { userId: bob, deviceId: 'd2', topics: [typingTopic('c1')] }, T0)
        await store.create(presence, { userId: bob, deviceId: 'd3', topics: [presenceTopic(alice)] }, T0)
        await store.create(marker, { userId: alice, deviceId: 'd1', topics: [inboxTopic(alice)] }, T0)
        store.append(typingTopic('c1'), Buffer.from(`{"user_id":"${alice}","typing":true}`), T0)
        store.append(typingTopic('c2'), Buffer.from(`{"user_id":"${alice}","typing":true}`), T0)
        store.append(inboxTopic(user('nobody')), ev(1), T0)
        store.append(inboxTopic(alice), ev(1), T0) // last: its wake comes after any other (one channel, in order)
        await waitFor(() => wakes.includes(marker), 'the marker\'s wake')
        t.same(wakes, [typing, marker], 'typing of c1 woke its queue; c2 and a user nobody follows woke nothing')
        t.same(await store.stats(), { queues: 4, events: 2 }, 'and appended nothing')
        store.append(presenceTopic(alice), Buffer.from('{"user_id":"x","state":"online"}'), T0)
        store.append(inboxTopic(bob), ev(2), T0)
        await waitFor(() => wakes.length === 4, 'two more wakes')
        t.same(wakes.slice(2), [presence, inbox])
      })

      t.test('typing and presence get their "t" (and typing its conversation); what no queue carries is not appended', async (t) => {
        const { store } = await make()
        const bob = user('bob')
        const conv = '0b6d1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4'
        const q = qid('q')
        const topics = [inboxTopic(bob), typingTopic(conv), presenceTopic('alice'), `conv/${conv}/events`, `user/${bob}/presence`]
        await store.create(q, { userId: bob, deviceId: 'd1', topics }, T0)
        store.append(typingTopic(conv), Buffer.from('{"user_id":"alice","typing":true}'), T0)
        store.append(presenceTopic('alice'), Buffer.from('{"user_id":"alice","state":"away","last_seen":"2024-01-01T00:00:00.000Z"}'), T0)
        store.append(`conv/${conv}/events`, ev(9), T0)
        store.append(`user/${bob}/presence`, Buffer.from('{"state":"away"}'), T0)
        store.append(inboxTopic(bob), Buffer.from('not json'), T0)
        store.append(inboxTopic(bob), Buffer.from('{}'), T0)
        store.append(inboxTopic(bob), ev(1), T0)
        const got = await store.poll(q, bob, 0, 500, T0)
        t.same(ids(got), [1, 2, 3], 'three events: typing, presence, the inbox envelope')
        t.same(bodies(got), [
          { t: 'typing', conv_id: conv, user_id: 'alice', typing: true },
          { t: 'presence', user_id: 'alice', state: 'away', last_seen: '2024-01-01T00:00:00.000Z' },
          { t: 'event', n: 1, pad: '' }
        ])
      })
    })
  }
})

t.test('queuePayloadOf: what each topic carries as a queue\'s JSON object', async (t) => {
  const conv = '0b6d1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4'
  const of = (topic: string, payload: string): string | null => queuePayloadOf(topic, Buffer.from(payload))?.toString() ?? null
  t.equal(of('user/bob/inbox', '{"t":"event","seq":1}'), '{"t":"event","seq":1}', 'an inbox envelope as it is')
  t.equal(of(`conv/${conv}/typing`, '{"user_id":"alice","typing":false}'), `{"t":"typing","conv_id":"${conv}","user_id":"alice","typing":false}`)
  t.equal(of('presence/alice', '{"user_id":"alice","state":"online"}'), '{"t":"presence","user_id":"alice","state":"online"}')
  t.equal(of(`conv/${conv}/events`, '{"t":"event"}'), null, 'conversation topics other than typing: never')
  t.equal(of('user/bob/presence', '{"state":"away"}'), null, 'user topics other than the inbox: never')
  t.equal(of('chat/room', '{"a":1}'), null, 'open topics: never')
  t.equal(of('user/bob/inbox', 'plain'), null, 'not a JSON object: never')
  t.equal(of('user/bob/inbox', '{}'), null, 'an empty object: never (it carries nothing)')
})

t.test('redis: queues whose hash vanished outside the scripts (evicted) leave the sweep\'s index, and the sweep ends', async (t) => {
  const url = await leaseRedisUrl(t)
  const redis = new Redis(url, { commandTimeout: 5000 })
  const subscriber = new Redis(url)
  t.teardown(() => { redis.disconnect(); subscriber.disconnect() })
  await redis.flushdb()
  const store = new RedisQueueStore(redis, subscriber, LIMITS, createLogger('silent'))
  // more than one sweep batch (500), so a sweep that found them again would never end
  for (let i = 0; i < 600; i++) await store.create(qid('evicted'), { userId: `evicted-${i}`, deviceId: 'd', topics: [inboxTopic(`evicted-${i}`)] }, T0)
  const hashes = await redis.keys('tl:lp:q:*')
  t.equal(hashes.length, 600)
  await redis.del(...hashes)
  await store.sweep(T0 + LIMITS.ttlMs + 1)
  t.equal(await redis.zcard('tl:lp:polled'), 0, 'the index is empty')
  t.same(await store.stats(), { queues: 0, events: 0 })
})
