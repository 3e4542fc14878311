import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import { migrate } from './migrations.js'
import { openPgStore } from './pg-driver.js'
import { openPgliteStore } from './pglite-driver.js'
import { isUnavailable, type Store } from '../../core/store.js'
import type { Telemetry, TelemetryEvents } from '../../core/telemetry.js'
import { ThreadlineError } from '../../schemas/index.js'

export type { Store, Queryable, Row } from '../../core/store.js'
export { StoreUnavailableError, isUnavailable } from '../../core/store.js'

/**
 * DATABASE_URL set → real PostgreSQL through pg; otherwise PGlite in the data dir. Migrated.
 * With `telemetry`, every failed query and transaction is told as a `storeError`.
 */
export async function openStore (config: Pick<Config, 'databaseUrl' | 'dataDir'>, log: Logger, telemetry?: Telemetry): Promise<Store> {
  const opened = config.databaseUrl !== null
    ? await openPgStore(config.databaseUrl, log)
    : await openPgliteStore(config.dataDir)
  const store = telemetry !== undefined ? tellingErrors(opened, telemetry) : opened
  try {
    const applied = await migrate(store)
    log.info({ driver: store.driver, applied }, 'store ready')
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}

type StoreErrorKind = TelemetryEvents['storeError']['kind']

/** What kind of store failure `err` is; null for a refusal of our own thrown inside a transaction. */
export function storeErrorKind (err: unknown): StoreErrorKind | null {
  if (err instanceof ThreadlineError) return null
  if (isUnavailable(err)) return 'unavailable'
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && /^2[23]/.test(code)) return 'refused'
  if (typeof code === 'string' && code.startsWith('40')) return 'conflict'
  return 'fault'
}

/**
 * Counts failures at the outermost call only (a query, a whole transaction): a
 * transaction's own queries are not wrapped, so one failure is told once. Success costs
 * nothing but the pass-through call.
 */
function tellingErrors (store: Store, telemetry: Telemetry): Store {
  const failed = (err: unknown): never => {
    const kind = storeErrorKind(err)
    if (kind !== null && telemetry.watched('storeError')) telemetry.emit('storeError', { kind })
    throw err
  }
  return {
    driver: store.driver,
    query: <R>(sql: string, params?: readonly unknown[]) => store.query<R>(sql, params).catch(failed),
    transaction: (fn) => store.transaction(fn).catch(failed),
    ping: () => store.ping().catch(failed),
    pool: () => store.pool(),
    close: () => store.close()
  }
}
