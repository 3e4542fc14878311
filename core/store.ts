// The one small interface every part of Threadline talks to storage through
// (DESIGN.md §1). Two drivers implement it: pg (production) and PGlite (embedded).
export type Row = Record<string, unknown>

export interface Queryable {
  query<R = Row>(sql: string, params?: readonly unknown[]): Promise<R[]>
}

/** A store's connections now (plugins/metrics reads them at each scrape). */
export interface StorePool {
  /** connections open */
  readonly total: number
  /** of those, connections no query holds */
  readonly idle: number
  /** callers waiting for a connection */
  readonly waiting: number
}

export interface Store extends Queryable {
  readonly driver: 'pg' | 'pglite'
  /** Runs fn in one transaction: committed when fn resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  /** Cheap round trip used by /readyz. */
  ping(): Promise<void>
  /** Its connections now: pg's pool; PGlite is one connection, busy or not. */
  pool(): StorePool
  close(): Promise<void>
}

/** Raised when the store cannot be reached; senders get `unavailable`, not `bad_request`. */
export class StoreUnavailableError extends Error {
  constructor (cause: unknown) {
    super('the message store is unreachable', { cause })
    this.name = 'StoreUnavailableError'
  }
}

// SQLSTATE classes that mean "the database is not there (or not answering in time)"
// rather than "the query is wrong": 08 connection exception, 57P admin shutdown / crash,
// 57014 statement timeout, 55P03 lock timeout, 53 insufficient resources.
const UNAVAILABLE_SQLSTATE = /^(08|57P|57014|55P03|53)/
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'])

export function isUnavailable (err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true
  if (typeof err !== 'object' || err === null) return false
  const e = err as { code?: unknown, message?: unknown }
  if (typeof e.code === 'string' && (UNAVAILABLE_SQLSTATE.test(e.code) || UNAVAILABLE_ERRNO.has(e.code))) return true
  // pg's own errors carry no code: a dropped or silent server, a pool that can't connect
  return typeof e.message === 'string' &&
    /Connection terminated|connection is closed|Client has encountered a connection error|timeout exceeded when trying to connect|Query read timeout|PGlite is closed/i.test(e.message)
}
