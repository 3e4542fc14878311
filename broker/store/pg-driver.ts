import pg from 'pg'
import type { Queryable, Row, Store } from './store.js'
import { StoreUnavailableError, isUnavailable } from './store.js'

// JSON integers everywhere (DESIGN.md §3): bigint columns (seq, counts) come back as
// numbers, not strings. Seqs stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v))

function wrap (err: unknown): unknown {
  return isUnavailable(err) ? new StoreUnavailableError(err) : err
}

export async function openPgStore (connectionString: string, log: { error: (o: object, m: string) => void }): Promise<Store> {
  const pool = new pg.Pool({ connectionString, max: 10, connectionTimeoutMillis: 5000 })
  // An idle client losing its server must not crash the process: the next query fails
  // with `unavailable` and the pool reconnects.
  pool.on('error', (err) => log.error({ err }, 'idle PostgreSQL connection failed'))
  let closed = false
  const check = (): void => {
    if (closed) throw new StoreUnavailableError(new Error('the store is closed'))
  }

  async function query<R = Row> (sql: string, params?: readonly unknown[]): Promise<R[]> {
    check()
    try {
      const res = await pool.query(sql, params as unknown[] | undefined)
      return res.rows as R[]
    } catch (err) {
      throw wrap(err)
    }
  }

  return {
    driver: 'pg',
    query,
    async transaction (fn) {
      check()
      let client: pg.PoolClient
      try {
        client = await pool.connect()
      } catch (err) {
        throw new StoreUnavailableError(err)
      }
      const tx: Queryable = {
        async query<R = Row> (sql: string, params?: readonly unknown[]) {
          try {
            return (await client.query(sql, params as unknown[] | undefined)).rows as R[]
          } catch (err) {
            throw wrap(err)
          }
        }
      }
      let broken = false
      try {
        await tx.query('BEGIN')
        const result = await fn(tx)
        await tx.query('COMMIT')
        return result
      } catch (err) {
        broken = isUnavailable(err)
        if (!broken) await client.query('ROLLBACK').catch(() => { broken = true })
        throw err
      } finally {
        // a connection that failed mid-transaction is discarded, not reused
        client.release(broken)
      }
    },
    async ping () { await query('SELECT 1') },
    async close () {
      if (closed) return
      closed = true
      await pool.end()
    }
  }
}
