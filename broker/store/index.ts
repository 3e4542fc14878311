import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import { migrate } from './migrations.js'
import { openPgStore } from './pg-driver.js'
import { openPgliteStore } from './pglite-driver.js'
import type { Store } from '../../core/store.js'

export type { Store, Queryable, Row } from '../../core/store.js'
export { StoreUnavailableError, isUnavailable } from '../../core/store.js'

/** DATABASE_URL set → real PostgreSQL through pg; otherwise PGlite in the data dir. Migrated. */
export async function openStore (config: Pick<Config, 'databaseUrl' | 'dataDir'>, log: Logger): Promise<Store> {
  const store = config.databaseUrl !== null
    ? await openPgStore(config.databaseUrl, log)
    : await openPgliteStore(config.dataDir)
  try {
    const applied = await migrate(store)
    log.info({ driver: store.driver, applied }, 'store ready')
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}
