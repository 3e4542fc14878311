// GET /v1/sync under concurrent commits (core/sync/): a transaction that stamped a row
// before a sync read and committed after it must be in the next sync, never skipped by
// the cursor handed out in between. Real PostgreSQL (several connections) and PGlite
// (one connection: its transactions run one after the other, so the interleaving cannot
// happen there, and the same assertions must hold).
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Queryable, Store } from '../../broker/store/index.js'
import { syncPage, type SyncResult } from '../../core/sync/changes.js'
import { decodeSyncCursor } from '../../core/sync/cursor.js'
import { commitBatch } from '../../core/messages/event-store.js'
import { forEachStore } from '../helpers/stores.js'

async function groupsOf (store: Store, user: string, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => randomUUID())
  await store.transaction(async (tx) => {
    await tx.query('INSERT INTO users (id, display_name) VALUES ($1, $1), (\'peer\', \'peer\') ON CONFLICT DO NOTHING', [user])
    for (const id of ids) {
      await tx.query('INSERT INTO conversations (id, type, title, created_by) VALUES ($1, \'group\', \'g\', $2)', [id, user])
      await tx.query('INSERT INTO members (conv_id, user_id) VALUES ($1, $2), ($1, \'peer\')', [id, user])
    }
  })
  return ids
}

/** One marker write as the receipts plugin makes it (the trigger stamps it). */
const read = (q: Queryable, convId: string, user: string): Promise<unknown> =>
  q.query('UPDATE members SET read_seq = read_seq + 1 WHERE conv_id = $1 AND user_id = $2', [convId, user])

const sync = (store: Store, user: string, cursor: string | null, limit = 100): Promise<SyncResult> =>
  syncPage(store, user, cursor === null ? null : decodeSyncCursor(cursor), limit)

const ids = (r: SyncResult): string[] => r.conversations.map(c => c.id).sort()

/** Runs `write` in a transaction that has taken its id and stays open until commit(). */
async function held (store: Store, write: (tx: Queryable) => Promise<unknown>): Promise<{ commit: () => Promise<void> }> {
  let release = (): void => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  let wrote = (): void => {}
  const inside = new Promise<void>(resolve => { wrote = resolve })
  const done = store.transaction(async (tx) => {
    await write(tx)
    wrote()
    await gate
  })
  await inside
  return { commit: async () => { release(); await done } }
}

t.test('a transaction that stamped before a sync and commits after it is in the next sync', t => forEachStore(t, async (t, store, driver) => {
  const [a, b] = (await groupsOf(store, 'uma', 2)).sort() as [string, string]
  const base = await sync(store, 'uma', null)
  const t1 = await held(store, (tx) => read(tx, a, 'uma'))

  let between: SyncResult
  if (driver === 'pg') {
    await store.transaction(async (tx) => { await read(tx, b, 'uma') }) // T2 commits first
    between = await sync(store, 'uma', base.cursor)
    t.same(ids(between), [b], 'the sync in between sees T2, not T1 (uncommitted)')
    await t1.commit()
  } else {
    // PGlite: T2 and the sync queue behind T1 on the one connection
    const t2 = store.transaction(async (tx) => { await read(tx, b, 'uma') })
    const later = t2.then(() => sync(store, 'uma', base.cursor))
    await t1.commit()
    between = await later
  }
  const next = await sync(store, 'uma', between.cursor)
  const seen = new Set([...ids(between), ...ids(next)])
  t.ok(seen.has(a), 'T1, committed after the cursor was handed out, is in the next sync')
  t.ok(seen.has(b))
  const markers = [...between.conversations, ...next.conversations].filter(c => c.id === a).map(c => c.markers.read_seq)
  t.equal(Math.max(...markers), 1, 'with T1\'s marker')
}))

t.test('a send batch that commits after a sync is in the next one', t => forEachStore(t, async (t, store, driver) => {
  const [a] = await groupsOf(store, 'vic', 1) as [string]
  const base = await sync(store, 'vic', null)
  // the send path's own batch SQL, held open after it stamped the conversation
  const batch = await held(store, (tx) => commitBatch(tx, [{ convId: a, senderId: 'peer', req: { client_msg_id: 'm1', type: 'text', text: 'hi' } }]))
  const between = driver === 'pg' ? await sync(store, 'vic', base.cursor) : null
  if (between !== null) t.same(between.conversations, [], 'not committed yet: not seen')
  await batch.commit()
  const next = await sync(store, 'vic', (between ?? base).cursor)
  t.same(ids(next), [a])
  t.match(next.conversations[0], { last_seq: 1, unread_count: 1, last_message: { seq: 1, sender_id: 'peer' } })
}))

t.test('many writers holding their transactions open for random times: a chain of syncs misses no final state', t => forEachStore(t, async (t, store, driver) => {
  const convs = await groupsOf(store, 'wes', 8)
  let cursor = (await sync(store, 'wes', null)).cursor
  const seen = new Map<string, number>()
  const record = (r: SyncResult): void => {
    for (const c of r.conversations) seen.set(c.id, Math.max(seen.get(c.id) ?? 0, c.markers.read_seq))
  }
  const run = { writing: true }
  const writers = Array.from({ length: driver === 'pg' ? 8 : 2 }, async (_w, w) => {
    for (let i = 0; i < 12; i++) {
      const conv = convs[(w * 5 + i * 3) % convs.length] as string
      await store.transaction(async (tx) => {
        await read(tx, conv, 'wes')
        // holding the transaction (its id taken) for a while shuffles commit order against id order
        await tx.query('SELECT pg_sleep($1)', [((w * 7 + i * 13) % 10) / 1000])
      })
    }
  })
  const syncer = (async () => {
    let syncs = 0
    while (run.writing || syncs === 0) {
      const r = await sync(store, 'wes', cursor, 3)
      record(r)
      cursor = r.cursor
      syncs++
    }
    return syncs
  })()
  await Promise.all(writers)
  run.writing = false
  const syncs = await syncer
  // once the writers are done: finish the sync in progress, then one whole sync that
  // began after the last commit must show the final state
  for (let finished = 0; finished < 2;) {
    const r = await sync(store, 'wes', cursor, 3)
    record(r)
    cursor = r.cursor
    if (!r.has_more) finished++
  }
  const finals = await store.query<{ conv_id: string, read_seq: number }>(
    'SELECT conv_id::text AS conv_id, read_seq FROM members WHERE user_id = $1', ['wes'])
  t.ok(syncs > 1, `the syncs ran alongside the writers (${syncs})`)
  for (const f of finals) {
    if (f.read_seq > 0) t.equal(seen.get(f.conv_id), f.read_seq, `conversation ${f.conv_id.slice(0, 8)}: the last write was seen`)
  }
}))

t.test('a transaction left open elsewhere holds nothing back: what a sync saw is not reported again', t => forEachStore(t, async (t, store, driver) => {
  if (driver !== 'pg') {
    t.pass('PGlite has one connection: no transaction can stay open beside a sync')
    return
  }
  const [a, b] = (await groupsOf(store, 'una', 2)).sort() as [string, string]
  // an unrelated writer that stays open across the syncs below (another database of the
  // same server would do the same: transaction ids are server-wide)
  const idle = await held(store, (tx) => tx.query('SELECT pg_current_xact_id()'))
  t.teardown(() => idle.commit())
  const base = await sync(store, 'una', null)
  t.same(ids(base), [a, b])
  t.same(ids(await sync(store, 'una', base.cursor)), [], 'nothing changed: nothing reported, the open transaction notwithstanding')
  await read(store, a, 'una')
  const next = await sync(store, 'una', base.cursor)
  t.same(ids(next), [a])
  t.same(ids(await sync(store, 'una', next.cursor)), [], 'and nothing again after that')
}))
