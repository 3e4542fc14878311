import pg from 'pg'
import type { Queryable, Row, Store } from './store.js'
import { StoreUnavailableError, isUnavailable } from './store.js'

// JSON integers everywhere (DESIGN.md §3): bigint columns (seq, counts) come back as
// numbers, not strings. Seqs stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v))

const CONNECT_TIMEOUT_MS = 5000
const QUERY_TIMEOUT_MS = 10_000

function wrap (err: unknown): unknown {
  return isUnavailable(err) ? new StoreUnavailableError(err) : err
}

export async function openPgStore (connectionString: string, log: { error: (o: object, m: string) => void }): Promise<Store> {
  const pool = new pg.Pool({
    connectionString,
    max: 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // A PostgreSQL that stops answering without closing the connection (a partition, a
    // firewall dropping packets) would otherwise hold a query, and with it the group
    // commit and every send behind it, until TCP gives up hours later. A query that gets
    // no answer in time fails as `unavailable`: no PUBACK, the session resends.
    // `?query_timeout=ms` in DATABASE_URL overrides it (pg reads it from the URL).
    query_timeout: QUERY_TIMEOUT_MS,
    // and idle connections whose peer vanished are found out, not handed to the next query
    keepAlive: true
  })
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
