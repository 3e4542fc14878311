import pg from 'pg'
import type { Queryable, Row, Store } from '../../core/store.js'
import { StoreUnavailableError, isUnavailable } from '../../core/store.js'

// JSON integers everywhere (DESIGN.md §3): bigint columns (seq, counts) come back as
// numbers, not strings. Seqs stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v))

const CONNECT_TIMEOUT_MS = 5000
const QUERY_TIMEOUT_MS = 10_000

// SQLSTATE 57014: cancelled by the server's statement_timeout (nothing else cancels our
// queries), i.e. the store is too slow to answer: the same `unavailable` as the client-side
// query_timeout it stands in for.
const STATEMENT_TIMEOUT = '57014'

function wrap (err: unknown): unknown {
  return isUnavailable(err) || (err as { code?: unknown } | null)?.code === STATEMENT_TIMEOUT ? new StoreUnavailableError(err) : err
}

/**
 * The server-side statement_timeout, a bit below the client-side query_timeout (the
 * default, or `?query_timeout=` of DATABASE_URL). The client giving up only drops its
 * socket; the server would go on running the statement and holding its row locks (the
 * conversation rows that every send of that conversation waits for) until it finished.
 * Cancelled by the server first, the statement and its transaction end there and then.
 * Lock waits count toward statement_timeout, so no separate lock_timeout is needed.
 */
export function statementTimeoutMs (connectionString: string): number {
  let queryTimeout = QUERY_TIMEOUT_MS
  try {
    const fromUrl = Number(new URL(connectionString).searchParams.get('query_timeout'))
    if (Number.isInteger(fromUrl) && fromUrl > 0) queryTimeout = fromUrl
  } catch {
    // not a URL (a libpq key=value string): pg reads no query_timeout from it either
  }
  return Math.max(1, queryTimeout - Math.min(1000, Math.floor(queryTimeout / 5)))
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
    // `?statement_timeout=ms` in DATABASE_URL overrides it likewise
    statement_timeout: statementTimeoutMs(connectionString),
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
    pool: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close () {
      if (closed) return
      closed = true
      await pool.end()
    }
  }
}
