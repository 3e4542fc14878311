// MembershipCache's edge cases, against a real store (both drivers) and without a
// broker: what a node's delivery checks see when devices come and go, when a change
// lands while a user loads, when the change log is read twice or out of order, and for
// users it has never seen. Cross-node behaviour is in test/cluster/membership-*.test.ts.
import { randomUUID } from 'node:crypto'
import { Aedes } from 'aedes'
import t from 'tap'
import { createBrokerState } from '../../broker/broker-state.js'
import { createLogger } from '../../broker/logger.js'
import { MembershipCache } from '../../broker/membership.js'
import { logMembershipChange, type ChangeKind } from '../../core/membership/change-log.js'
import type { Queryable, Row, Store } from '../../broker/store/index.js'
import { redisBehindProxy } from '../helpers/cluster.js'
import { within } from '../helpers/membership.js'
import { forEachStore, openTestStore } from '../helpers/stores.js'

const silent = createLogger('silent')

/** A group of `members` written in SQL; answers its id. */
async function group (store: Store, members: readonly string[]): Promise<string> {
  const id = randomUUID()
  await store.transaction(async (tx) => {
    await tx.query('INSERT INTO users (id, display_name) SELECT u, u FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING', [[...members]])
    await tx.query('INSERT INTO conversations (id, type, title, created_by) VALUES ($1, \'group\', \'g\', $2)', [id, members[0]])
    await tx.query('INSERT INTO members (conv_id, user_id) SELECT $1, u FROM unnest($2::text[]) AS u', [id, [...members]])
  })
  return id
}

/** A member change and its log row in one transaction, as the REST services make it; not announced. */
async function change (q: Store | Queryable, convId: string, kind: ChangeKind, userId: string): Promise<number> {
  const write = async (tx: Queryable): Promise<number> => {
    if (kind === 'added') {
      await tx.query('INSERT INTO users (id, display_name) VALUES ($1, $1) ON CONFLICT DO NOTHING', [userId])
      await tx.query('INSERT INTO members (conv_id, user_id) VALUES ($1, $2)', [convId, userId])
    } else {
      await tx.query('DELETE FROM members WHERE conv_id = $1 AND user_id = $2', [convId, userId])
    }
    return await logMembershipChange(tx, convId, kind, [userId]) as number
  }
  return 'transaction' in q ? await q.transaction(write) : await write(q)
}

const has = (cache: MembershipCache, userId: string, convId: string): boolean | undefined => cache.convsOf(userId)?.has(convId)

t.test('a user stays cached until the last of their devices leaves', t => forEachStore(t, async (t, store) => {
  const conv = await group(store, ['ann', 'ben'])
  const cache = new MembershipCache(store, silent)
  await cache.retain('ann')
  await cache.retain('ann')
  t.equal(has(cache, 'ann', conv), true, 'loaded with the first device')
  cache.release('ann')
  t.equal(has(cache, 'ann', conv), true, 'one device left: still cached')
  await cache.announce({ conv_id: conv, added: [], removed: ['ann'] })
  t.equal(has(cache, 'ann', conv), false, 'changes apply to the shared entry')
  cache.release('ann')
  t.equal(cache.convsOf('ann'), undefined, 'the last device left: dropped')
  cache.release('ann')
  t.equal(cache.convsOf('ann'), undefined, 'a release too many is harmless')
  await cache.retain('ann')
  t.equal(has(cache, 'ann', conv), true, 'a new device loads again, from the store (the announcement was not committed)')
}))

t.test('a change that lands while a user loads is not lost', t => forEachStore(t, async (t, store) => {
  const conv = await group(store, ['ann', 'ben'])
  // the real store, with the first load's answer held back until the test lets it go
  let release: () => void = () => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  let reached: () => void = () => {}
  const atGate = new Promise<void>(resolve => { reached = resolve })
  let first = true
  const gated: Queryable = {
    async query<R = Row> (sql: string, params?: readonly unknown[]): Promise<R[]> {
      const rows = await store.query<R>(sql, params)
      if (first && sql.includes('FROM members WHERE user_id = $1')) {
        first = false
        reached()
        await gate
      }
      return rows
    }
  }
  const cache = new MembershipCache(gated, silent)
  const retaining = cache.retain('ben')
  await atGate
  // the load has read "ben is in conv"; the removal commits and is announced before it returns
  await change(store, conv, 'removed', 'ben')
  await cache.announce({ conv_id: conv, added: [], removed: ['ben'] })
  release()
  await retaining
  t.equal(has(cache, 'ben', conv), false, 'the load asked again and saw the removal')
}))

t.test('a change whose announcement never came is read from the change log, once', t => forEachStore(t, async (t, store) => {
  const conv = await group(store, ['ann', 'ben'])
  const cache = new MembershipCache(store, silent)
  await cache.catchUp()
  await cache.retain('ben')
  const removedAt = await change(store, conv, 'removed', 'ben')
  t.equal(has(cache, 'ben', conv), true, 'not announced: the delivery view lags')
  t.equal(await cache.isMember(conv, 'ben'), false, 'isMember asks the store, so SUBSCRIBE and history never lag')
  await cache.catchUp()
  t.equal(has(cache, 'ben', conv), false, 'the log row applied')
  await cache.catchUp()
  t.equal(has(cache, 'ben', conv), false, 'reading the log again changes nothing')

  // the announcement of the removal arrives late, then an older one (the two can cross on the cluster channel)
  await cache.announce({ id: removedAt, conv_id: conv, added: [], removed: ['ben'] })
  await cache.announce({ id: removedAt - 1, conv_id: conv, added: ['ben'], removed: [] })
  t.equal(has(cache, 'ben', conv), false, 'a change older than one applied to the conversation is skipped')

  const addedAt = await change(store, conv, 'added', 'ben')
  await cache.announce({ id: addedAt, conv_id: conv, added: ['ben'], removed: [] })
  t.equal(has(cache, 'ben', conv), true, 'a newer change applies')
  await cache.catchUp()
  t.equal(has(cache, 'ben', conv), true, 'and reading it from the log as well changes nothing')
}))

t.test('users the node has never seen: nothing cached, nothing thrown', t => forEachStore(t, async (t, store) => {
  const conv = await group(store, ['ann', 'ben'])
  const cache = new MembershipCache(store, silent)
  await cache.catchUp()
  await change(store, conv, 'added', 'cal')
  await cache.announce({ conv_id: conv, added: ['cal', 'nobody'], removed: ['ghost'] })
  await cache.catchUp()
  t.equal(cache.convsOf('cal'), undefined, 'changes of users with no device here are not cached')
  t.equal(cache.convsOf('ghost'), undefined)
  t.equal(await cache.isMember(conv, 'nobody'), false, 'isMember answers from the store: nobody was never added')
  t.equal(await cache.isMember(randomUUID(), 'ann'), false, 'an unknown conversation is not an error')
  await cache.retain('stranger')
  t.same([...cache.convsOf('stranger') ?? ['not cached']], [], 'a user in no conversation is cached with none')
  cache.release('nobody')
  t.pass('releasing a user never retained is harmless')
}))

t.test('a log row that commits after a higher one is still applied', async (t) => {
  // PostgreSQL proper: two transactions at once (PGlite has one connection)
  const store = await openTestStore(t, 'pg')
  const [c1, c2] = [await group(store, ['ann']), await group(store, ['ann'])]
  await group(store, ['ben']) // ben's user row exists: the two transactions below must not wait on each other
  const cache = new MembershipCache(store, silent)
  await cache.catchUp()
  await cache.retain('ben')

  let commit: () => void = () => {}
  let logged: (id: number) => void = () => {}
  const lowerId = new Promise<number>(resolve => { logged = resolve })
  const slow = store.transaction(async (tx) => {
    logged(await change(tx, c1, 'added', 'ben'))
    await new Promise<void>(resolve => { commit = resolve })
  })
  const low = await lowerId
  const high = await change(store, c2, 'added', 'ben')
  t.ok(high > low, `id ${high} commits while id ${low} is still in flight`)
  await cache.catchUp()
  t.same([has(cache, 'ben', c1), has(cache, 'ben', c2)], [false, true], 'the higher id is applied, the lower one is not visible yet')
  commit()
  await slow
  await cache.catchUp()
  t.same([has(cache, 'ben', c1), has(cache, 'ben', c2)], [true, true], 'the lower id is applied once it commits')
})

t.test('while the cluster channel is down deliveries are withheld; once it is back the cache is read again', async (t) => {
  const store = await openTestStore(t, 'pg')
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const state = createBrokerState({ redisUrl: proxy.urlFor(redisUrl), offlineQueueMax: 1000, sessionExpiryS: 604800, redisTimeoutMs: 1000, logLevel: 'silent' }, silent)
  const broker = await Aedes.createBroker({ persistence: state.persistence, mq: state.mq })
  t.teardown(async () => {
    await new Promise<void>(resolve => broker.close(() => resolve()))
    await state.close()
  })
  const cache = new MembershipCache(store, silent)
  cache.attach(broker)
  const conv = await group(store, ['ann', 'ben'])
  await cache.retain('ben')
  t.equal(has(cache, 'ben', conv), true)
  t.equal(cache.stale, false)

  const stale = cache.whenStale()
  proxy.cut()
  await within(stale, 10_000, 'the cache turning stale after the cut')
  t.equal(cache.convsOf('ben'), undefined, 'stale: no delivery view at all, so conversation deliveries are withheld')
  await change(store, conv, 'removed', 'ben') // its announcement could not reach this node anyway
  t.equal(await cache.isMember(conv, 'ben'), false, 'SUBSCRIBE and history checks still answer, from the store')

  const fresh = cache.whenFresh()
  proxy.restore()
  await within(fresh, 20_000, 'the cache fresh again after the restore')
  t.equal(has(cache, 'ben', conv), false, 'read again: the removal made meanwhile is there')
  await cache.catchUp()
  t.equal(has(cache, 'ben', conv), false, 'and the log row of it changes nothing more')
})

t.test('log rows older than the retention are pruned; younger ones are kept', t => forEachStore(t, async (t, store) => {
  const conv = await group(store, ['ann'])
  const old = await change(store, conv, 'added', 'ben')
  await store.query('UPDATE membership_changes SET created_at = now() - interval \'2 hours\' WHERE id = $1', [old])
  const young = await change(store, conv, 'removed', 'ben')
  const cache = new MembershipCache(store, silent)
  await cache.catchUp()
  const left = await store.query<{ id: number }>('SELECT id FROM membership_changes ORDER BY id')
  t.same(left.map(r => r.id), [young], 'the two-hour-old row is gone, the new one stays')
}))

t.test('a node that could not read the log for half its retention reads its users again', t => forEachStore(t, async (t, store) => {
  const conv = await group(store, ['ann', 'ben'])
  let clock = 0
  const cache = new MembershipCache(store, silent, () => clock)
  await cache.catchUp()
  await cache.retain('ben')
  // the removal's log row was pruned before this node read it (it was cut off from the store)
  const id = await change(store, conv, 'removed', 'ben')
  await store.query('DELETE FROM membership_changes WHERE id = $1', [id])
  clock = 10 * 60_000
  await cache.catchUp()
  t.equal(has(cache, 'ben', conv), true, 'ten minutes after the last read the log is trusted: the row is gone, nothing changes')
  clock += 31 * 60_000
  await cache.catchUp()
  t.equal(has(cache, 'ben', conv), false, 'thirty-one minutes without a read: the cached users are read again from members')
}))
