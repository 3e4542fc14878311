import { mkdir } from 'node:fs/promises'
import { PGlite, types } from '@electric-sql/pglite'
import type { Queryable, Row, Store } from '../../core/store.js'
import { StoreUnavailableError } from '../../core/store.js'

// Same rule as the pg driver: bigint columns come back as JSON integers.
const parsers = { [types.INT8]: (v: string) => Number(v) }

/** dataDir null → in-memory database (tests); otherwise files under dataDir/pglite. */
export async function openPgliteStore (dataDir: string | null): Promise<Store> {
  let dir: string | undefined
  if (dataDir !== null) {
    dir = `${dataDir}/pglite`
    await mkdir(dir, { recursive: true })
  }
  const db = await PGlite.create(dir, { parsers })
  let closed = false
  // queries and transactions under way: PGlite runs one at a time, the rest wait for it
  let inFlight = 0

  function check (): void {
    if (closed) throw new StoreUnavailableError(new Error('PGlite is closed'))
  }

  return {
    driver: 'pglite',
    async query<R = Row> (sql: string, params?: readonly unknown[]) {
      check()
      inFlight++
      try {
        return (await db.query<R>(sql, params as unknown[] | undefined)).rows
      } finally {
        inFlight--
      }
    },
    async transaction (fn) {
      check()
      inFlight++
      try {
        // PGlite is one connection: its transaction() serialises callers, which is
        // what group commit wants anyway.
        return await db.transaction(async (t) => {
          const tx: Queryable = {
            async query<R = Row> (sql: string, params?: readonly unknown[]) {
              return (await t.query<R>(sql, params as unknown[] | undefined)).rows
            }
          }
          return await fn(tx)
        })
      } finally {
        inFlight--
      }
    },
    async ping () { check(); await db.query('SELECT 1') },
    pool: () => ({ total: 1, idle: inFlight === 0 ? 1 : 0, waiting: Math.max(0, inFlight - 1) }),
    async close () {
      if (closed) return
      closed = true
      await db.close()
    }
  }
}
