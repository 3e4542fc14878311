// The presence rule (plugins/presence/backend.ts) as both drivers implement it: in memory
// and in Redis (the Lua scripts), one suite for both. Nodes are backends with their own
// node ids sharing one world (a MemoryWorld, or one Redis database); times are given, so
// nothing here waits for a clock.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { MemoryBackend, MemoryWorld, type PresenceBackend, type Transition } from '../../plugins/presence/backend.js'
import { RedisBackend } from '../../plugins/presence/redis-backend.js'
import { leaseRedisUrl } from '../helpers/redis-db.js'

const GRACE = 1000
const DEAD_AFTER = 3000
const STALE = 5000
const T0 = 1_700_000_000_000

type Nodes = (ids: string[], graceMs?: number) => Promise<PresenceBackend[]>

async function drivers (t: Test): Promise<Array<[string, Nodes]>> {
  const url = await leaseRedisUrl(t)
  return [
    ['memory', async (ids, graceMs = GRACE) => {
      const world = new MemoryWorld()
      return ids.map(nodeId => new MemoryBackend({ nodeId, graceMs, deadAfterMs: DEAD_AFTER, staleMs: STALE }, world))
    }],
    ['redis', async (ids, graceMs = GRACE) => {
      const redis = new Redis(url, { commandTimeout: 2000 })
      t.teardown(() => redis.disconnect())
      await redis.flushdb() // each test starts from an empty cluster
      return ids.map(nodeId => new RedisBackend(redis, { nodeId, graceMs, deadAfterMs: DEAD_AFTER, staleMs: STALE }))
    }]
  ]
}

/** a transition without its token (what the tests compare) */
const bare = (x: Transition | null): Omit<Transition, 'token'> | null => {
  if (x === null) return null
  const { token: _token, ...rest } = x
  return rest
}
const dev = (conn: string, away = false): { conn: string, away: boolean } => ({ conn, away })
const states = (ts: readonly Transition[]): string[] => ts.map(x => `${x.userId} ${x.state}${x.lastSeenMs !== undefined ? ` ${x.lastSeenMs - T0}` : ''}`)

t.test('the rule, in memory and in Redis', async (t) => {
  let run = 0
  for (const [name, nodes] of await drivers(t)) {
    t.test(name, async (t) => {
      const user = (): string => `u${++run}`

      t.test('online with a device, away when every device is away, online again with one active', async (t) => {
        const [a] = await nodes(['A']) as [PresenceBackend]
        const u = user()
        t.same(bare((await a.sync(u, [dev('A/1')], T0)).transition), { userId: u, state: 'online' })
        t.same(await a.sync(u, [dev('A/1'), dev('A/2')], T0 + 1), { transition: null, pendingUntilMs: null }, 'a second device changes nothing')
        t.equal((await a.sync(u, [dev('A/1', true), dev('A/2')], T0 + 2)).transition, null, 'one of two away: still online')
        t.same(bare((await a.sync(u, [dev('A/1', true), dev('A/2', true)], T0 + 3)).transition), { userId: u, state: 'away' })
        t.same([...await a.states([u, 'nobody-here'])], [[u, 'away']])
        t.same(bare((await a.sync(u, [dev('A/1', true), dev('A/2')], T0 + 4)).transition), { userId: u, state: 'online' })
        t.same([...await a.connected([u, 'nobody-here'])], [u])
      })

      t.test('the last device gone: the state holds for the grace period, then offline, last seen when it went', async (t) => {
        const [a] = await nodes(['A']) as [PresenceBackend]
        const u = user()
        await a.sync(u, [dev('A/1')], T0)
        t.same(await a.sync(u, [], T0 + 100), { transition: null, pendingUntilMs: T0 + 100 + GRACE })
        t.same([...await a.states([u])], [[u, 'online']], 'still online during the grace period')
        t.same([...await a.connected([u])], [], 'but no device is connected')
        t.equal(await a.settle(u, T0 + 100 + GRACE - 1), null, 'not before it is due')
        t.same(await a.sync(u, [], T0 + 500), { transition: null, pendingUntilMs: T0 + 100 + GRACE }, 'another empty view keeps the first departure')
        t.same(states([await a.settle(u, T0 + 100 + GRACE) as Transition]), [`${u} offline 100`])
        t.equal(await a.settle(u, T0 + 5000), null, 'once')
        t.same([...await a.states([u])], [])
        t.same(bare((await a.sync(u, [dev('A/3')], T0 + 6000)).transition), { userId: u, state: 'online' }, 'back: online')
      })

      t.test('a device back within the grace period: no offline, no online', async (t) => {
        const [a] = await nodes(['A']) as [PresenceBackend]
        const u = user()
        await a.sync(u, [dev('A/1')], T0)
        await a.sync(u, [], T0 + 10)
        t.same(await a.sync(u, [dev('A/2')], T0 + 20), { transition: null, pendingUntilMs: null })
        t.equal(await a.settle(u, T0 + 10 + GRACE), null, 'the grace period was called off')
        t.same(await a.settleDue(T0 + 10 * GRACE, 100), [])
      })

      t.test('a user who was never online: going changes nothing', async (t) => {
        const [a] = await nodes(['A']) as [PresenceBackend]
        t.same(await a.sync(user(), [], T0), { transition: null, pendingUntilMs: null })
      })

      t.test('devices on two nodes: one state; the grace period ends once, by whichever node', async (t) => {
        const [a, b] = await nodes(['A', 'B']) as [PresenceBackend, PresenceBackend]
        const u = user()
        t.same(states([(await a.sync(u, [dev('A/1')], T0)).transition as Transition]), [`${u} online`])
        t.same(await b.sync(u, [dev('B/1', true)], T0 + 1), { transition: null, pendingUntilMs: null })
        t.same(bare((await a.sync(u, [dev('A/1', true)], T0 + 2)).transition), { userId: u, state: 'away' }, 'away only when the other node\'s device is away too')
        t.same(await a.sync(u, [], T0 + 3), { transition: null, pendingUntilMs: null }, 'B\'s device keeps the user')
        t.same(await b.sync(u, [], T0 + 4), { transition: null, pendingUntilMs: T0 + 4 + GRACE })
        const ended = [...await a.settleDue(T0 + 4 + GRACE, 100), ...await b.settleDue(T0 + 4 + GRACE, 100)].filter(x => x.userId === u)
        t.same(states(ended), [`${u} offline 4`], 'one offline, from one of the two')
      })

      t.test('a takeover across nodes in either order is no change', async (t) => {
        const [a, b] = await nodes(['A', 'B']) as [PresenceBackend, PresenceBackend]
        const u = user()
        await a.sync(u, [dev('A/1')], T0)
        t.equal((await b.sync(u, [dev('B/9')], T0 + 1)).transition, null, 'the new connection first')
        t.same(await a.sync(u, [], T0 + 2), { transition: null, pendingUntilMs: null }, 'then the old one goes')
        t.same(await b.sync(u, [], T0 + 3), { transition: null, pendingUntilMs: T0 + 3 + GRACE })
        t.equal((await a.sync(u, [dev('A/2')], T0 + 4)).transition, null, 'the old one gone first, the new one within the grace period')
      })

      t.test('a dead node\'s devices are removed; users left without one go offline, last seen at its last heartbeat', async (t) => {
        const [a, b] = await nodes(['A', 'B']) as [PresenceBackend, PresenceBackend]
        const [lone, both] = [user(), user()]
        await a.heartbeat(T0)
        await b.heartbeat(T0)
        await a.sync(lone, [dev('A/1')], T0 + 1)
        await a.sync(both, [dev('A/2')], T0 + 1)
        await b.sync(both, [dev('B/1')], T0 + 1)
        await a.heartbeat(T0 + 1000) // A's last
        await b.heartbeat(T0 + 3500)
        t.same(await b.reapDead(T0 + 3500, 100), [], 'not dead before deadAfterMs')
        await b.heartbeat(T0 + 4500)
        const reaped = (await b.reapDead(T0 + 4500, 100)).filter(x => x.userId === lone || x.userId === both)
        t.same(states(reaped), [`${lone} offline 1000`], 'the user with a device elsewhere stays')
        t.same([...await b.states([lone, both])], [[both, 'online']])
        t.same(await b.reapDead(T0 + 4600, 100), [], 'reaped once')

        // A was only stalled: its next heartbeat tells it, and it registers its devices again
        t.equal(await a.heartbeat(T0 + 5000), true, 'A learns it was taken for dead')
        t.equal(await a.heartbeat(T0 + 5001), false, 'and only once')
        t.same(bare((await a.sync(lone, [dev('A/1')], T0 + 5002)).transition), { userId: lone, state: 'online' })
      })

      t.test('a dead node with many users is reaped in batches', async (t) => {
        const [a, b] = await nodes(['A', 'B']) as [PresenceBackend, PresenceBackend]
        const users = Array.from({ length: 25 }, () => user())
        for (const u of users) await a.sync(u, [dev(`A/${u}`)], T0)
        await a.heartbeat(T0)
        await b.heartbeat(T0 + 10_000)
        const first = await b.reapDead(T0 + 10_000, 10)
        t.ok(first.length >= 10 && first.length < 25, `a first batch (${first.length})`)
        const rest: Transition[] = []
        for (let i = 0; i < 5; i++) rest.push(...await b.reapDead(T0 + 10_000, 10))
        t.same(new Set([...first, ...rest].map(x => x.userId)), new Set(users), 'every user once')
        t.equal(first.length + rest.length, 25)
      })

      t.test('a node that left is never reaped', async (t) => {
        const [a, b] = await nodes(['A', 'B']) as [PresenceBackend, PresenceBackend]
        const u = user()
        await a.heartbeat(T0)
        await a.sync(u, [dev('A/1')], T0)
        await a.sync(u, [], T0 + 1)
        await a.leave()
        t.same(await b.reapDead(T0 + 100_000, 100), [])
        t.same(states((await b.settleDue(T0 + 1 + GRACE, 100)).filter(x => x.userId === u)), [`${u} offline 1`], 'its users\' grace periods end on the other nodes')
      })

      t.test('grace 0: offline at once', async (t) => {
        const [backend] = await nodes(['Z'], 0) as [PresenceBackend]
        const u = user()
        await backend.sync(u, [dev('Z/1')], T0)
        t.same(states([(await backend.sync(u, [], T0 + 7)).transition as Transition]), [`${u} offline 7`])
      })

      t.test('a change nobody confirmed published is handed out again once stale, to one node; a confirmed one never', async (t) => {
        const [a, b] = await nodes(['A', 'B']) as [PresenceBackend, PresenceBackend]
        const [heard, unheard] = [user(), user()]
        const now = Date.now()
        const online = (await a.sync(heard, [dev('A/1')], now)).transition as Transition
        await a.published(online)
        await a.sync(unheard, [dev('A/2')], now) // as if its caller had timed out: nobody publishes it
        t.same(await a.unpublished(now + 10, 100), [], 'not before staleMs')
        const again = (await b.unpublished(now + STALE + 1000, 100)).filter(x => x.userId === heard || x.userId === unheard)
        t.same(again.map(bare), [{ userId: unheard, state: 'online' }], 'the unconfirmed one, to one node')
        t.same((await a.unpublished(now + STALE + 1001, 100)).filter(x => x.userId === unheard), [], 'claimed: not handed to another node at once')
        await b.published(again[0] as Transition)
        t.same((await a.unpublished(now + 10 * STALE, 100)).filter(x => x.userId === unheard), [], 'confirmed: never again')
      })

      t.test('only the newest change of a user waits in the outbox; confirming an older one leaves it', async (t) => {
        const [a] = await nodes(['A']) as [PresenceBackend]
        const u = user()
        const now = Date.now()
        const online = (await a.sync(u, [dev('A/1')], now)).transition as Transition
        const away = (await a.sync(u, [dev('A/1', true)], now)).transition as Transition
        await a.published(online)
        t.same((await a.unpublished(now + STALE + 1000, 100)).map(bare), [{ userId: u, state: 'away' }], 'the newest state, not the one confirmed')
        await a.published(away)
        t.same(await a.unpublished(now + 10 * STALE, 100), [])
      })

      t.test('concurrent syncs of one user from two nodes: each change reported once', async (t) => {
        const [a, b] = await nodes(['A', 'B']) as [PresenceBackend, PresenceBackend]
        const u = user()
        const results = await Promise.all([
          a.sync(u, [dev('A/1')], T0), b.sync(u, [dev('B/1')], T0), a.sync(u, [dev('A/1')], T0 + 1), b.sync(u, [dev('B/1')], T0 + 1)
        ])
        t.same(results.map(r => r.transition?.state).filter(Boolean), ['online'], 'one online')
      })
    })
  }
})
