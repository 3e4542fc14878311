// The shared suite both store drivers pass (the MQTT.js abstract_store pattern).
import t from 'tap'
import { migrate } from '../../broker/store/migrations.js'
import { isUnavailable } from '../../broker/store/index.js'
import { forEachStore } from '../helpers/stores.js'

t.test('store drivers', async (t) => {
  await forEachStore(t, async (t, store) => {
    t.test('query returns rows with bigints as JSON integers', async (t) => {
      const rows = await store.query<{ n: number, big: number }>('SELECT 1 AS n, 9007199254740::bigint AS big')
      t.same(rows, [{ n: 1, big: 9007199254740 }])
      t.equal(typeof rows[0]?.big, 'number')
    })

    t.test('a transaction commits what its function did', async (t) => {
      await store.transaction(async (tx) => {
        await tx.query("INSERT INTO users (id, display_name) VALUES ('tx-ok', 'x')")
      })
      t.equal((await store.query("SELECT id FROM users WHERE id = 'tx-ok'")).length, 1)
    })

    t.test('a transaction whose function throws leaves nothing behind', async (t) => {
      await t.rejects(store.transaction(async (tx) => {
        await tx.query("INSERT INTO users (id, display_name) VALUES ('tx-no', 'x')")
        throw new Error('changed my mind')
      }), /changed my mind/)
      t.equal((await store.query("SELECT id FROM users WHERE id = 'tx-no'")).length, 0)
    })

    t.test('a failing statement rolls the transaction back and the store stays usable', async (t) => {
      await t.rejects(store.transaction(async (tx) => {
        await tx.query("INSERT INTO users (id, display_name) VALUES ('tx-dup', 'x')")
        await tx.query("INSERT INTO users (id, display_name) VALUES ('tx-dup', 'x')")
      }))
      t.equal((await store.query("SELECT id FROM users WHERE id = 'tx-dup'")).length, 0)
      t.same(await store.query('SELECT 2 AS n'), [{ n: 2 }])
    })

    t.test('migrations are idempotent', async (t) => {
      t.equal(await migrate(store), 0, 'a second run applies nothing')
      const rows = await store.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')
      t.ok(rows.length >= 1)
      t.same(rows.map(r => r.version), rows.map((_, i) => i + 1), 'versions are 1..n')
    })

    t.test('the data model enforces its keys', async (t) => {
      await store.query("INSERT INTO users (id, display_name) VALUES ('ka', 'a'), ('kb', 'b')")
      await store.query("INSERT INTO conversations (id, type, created_by, direct_key) VALUES ('00000000-0000-0000-0000-00000000000a', 'direct', 'ka', 'ka|kb')")
      await t.rejects(store.query("INSERT INTO conversations (id, type, created_by, direct_key) VALUES ('00000000-0000-0000-0000-00000000000b', 'direct', 'kb', 'ka|kb')"), 'one direct conversation per pair')
      await store.query("INSERT INTO events (conv_id, seq, sender_id, client_msg_id, type) VALUES ('00000000-0000-0000-0000-00000000000a', 1, 'ka', 'm1', 'text')")
      await t.rejects(store.query("INSERT INTO events (conv_id, seq, sender_id, client_msg_id, type) VALUES ('00000000-0000-0000-0000-00000000000a', 2, 'ka', 'm1', 'text')"), '(conv_id, sender_id, client_msg_id) is unique')
      await t.rejects(store.query("INSERT INTO events (conv_id, seq, sender_id, client_msg_id, type) VALUES ('00000000-0000-0000-0000-00000000000a', 1, 'kb', 'm2', 'text')"), '(conv_id, seq) is unique')
      await t.rejects(store.query("INSERT INTO events (conv_id, seq, sender_id, client_msg_id, type) VALUES ('00000000-0000-0000-0000-00000000000a', 3, 'kb', 'm3', 'poll')"), 'type is checked')
    })

    t.test('a closed store answers unavailable', async (t) => {
      await store.close()
      const err = await store.query('SELECT 1').then(() => null, (e: unknown) => e)
      t.ok(isUnavailable(err), `got ${String(err)}`)
    })
  })
})
