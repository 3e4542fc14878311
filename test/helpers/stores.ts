// Every store-touching test runs against both drivers (DESIGN.md §1: same SQL for both):
// PGlite in memory always, and PostgreSQL when DATABASE_URL is set (test/run.ts sets
// it), in a database of the test file's own so files run in parallel.
//
// Starting PGlite costs seconds (a WASM Postgres boots), so forEachStore keeps one store
// per driver for the whole file and empties it (TRUNCATE of every table but the
// migration log) before each use. A test that needs a store of its own (to close it,
// say) asks for `fresh`.
import tap, { type Test } from 'tap'
import { createLogger } from '../../broker/logger.js'
import { migrate } from '../../broker/store/migrations.js'
import { openPgStore } from '../../broker/store/pg-driver.js'
import { openPgliteStore } from '../../broker/store/pglite-driver.js'
import type { Store } from '../../broker/store/index.js'
import { createDatabase } from './pg-database.js'

export type StoreDriver = 'pglite' | 'pg'

interface Teardownable { teardown(fn: () => unknown): void }

/** The drivers this run can test: PGlite always, pg when DATABASE_URL is set. */
export function storeDrivers (): StoreDriver[] {
  return process.env.DATABASE_URL ? ['pglite', 'pg'] : ['pglite']
}

/** A migrated, empty store of its own, closed (and its database dropped) at t's teardown. */
export async function openTestStore (t: Teardownable, driver: StoreDriver): Promise<Store> {
  let store: Store
  if (driver === 'pglite') {
    store = await openPgliteStore(null)
    t.teardown(() => store.close())
  } else {
    const db = await createDatabase()
    // one teardown, so the pool is surely closed before the drop
    store = await openPgStore(db.url, createLogger('silent'))
    t.teardown(async () => {
      await store.close()
      await db.drop()
    })
  }
  await migrate(store)
  return store
}

/** Empties every table but the migration log, whatever later migrations added. */
export async function emptyStore (store: Store): Promise<void> {
  const tables = await store.query<{ name: string }>(
    `SELECT quote_ident(tablename) AS name FROM pg_tables
     WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'`)
  if (tables.length > 0) await store.query(`TRUNCATE ${tables.map(r => r.name).join(', ')} CASCADE`)
}

interface Shared { store: Promise<Store>, busy: boolean }
const shared = new Map<StoreDriver, Shared>()

async function borrow (driver: StoreDriver): Promise<{ store: Store, release: () => void }> {
  let entry = shared.get(driver)
  if (entry === undefined) {
    entry = { store: openTestStore(tap, driver), busy: false }
    shared.set(driver, entry)
  }
  if (entry.busy) throw new Error('forEachStore runs one test at a time per file; pass { fresh: true } to run concurrently')
  entry.busy = true
  const store = await entry.store
  await emptyStore(store)
  const e = entry
  return { store, release: () => { e.busy = false } }
}

export interface ForEachStoreOptions {
  /** a store of the test's own (it may close it), instead of the file's shared one */
  fresh?: boolean
}

/**
 * Runs `fn` once per driver, each in a subtest named after it (`pglite`, `pg`) with an
 * empty migrated store. Resolves when every subtest has finished.
 */
export async function forEachStore (t: Test, fn: (t: Test, store: Store, driver: StoreDriver) => Promise<void>, opts: ForEachStoreOptions = {}): Promise<void> {
  for (const driver of storeDrivers()) {
    await t.test(driver, async (t) => {
      if (opts.fresh === true) return await fn(t, await openTestStore(t, driver), driver)
      const { store, release } = await borrow(driver)
      t.teardown(release)
      await fn(t, store, driver)
    })
  }
}
