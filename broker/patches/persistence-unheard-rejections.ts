// Works around two promises that aedes-persistence-redis 11.2 and Aedes 1.2 leave with no
// one listening; applied in broker/broker-state.ts. Every Redis command of the node has a
// deadline (commandTimeout), so under load or while Redis hangs these reject with
// "Command timed out", and an unhandled rejection ends a Node process: the whole node,
// every connection on it, would fall into a reconnect storm.
// - asyncPersistence.js sends some cleanup commands without awaiting them: LREM and RPUSH
//   of the will list in putWill/delWill (every CONNECT calls delWill) and, in
//   getDecodedValue, LREM of a queue entry whose packet is gone (every reconnect of a
//   persistent session reads its queue through it). Their failure is harmless: a stale
//   list entry is pruned when the list is next read. So on the persistence's connection
//   those two commands get a listener of their own; a caller that awaits them (the
//   library's other uses) still gets the rejection.
// - Aedes' CONNECT (lib/handlers/connect.js storeWill) calls
//   `persistence.delWill(client).finally(…)` and drops the promise .finally() returns,
//   which rejects whenever delWill does. delWill is made never to reject: a will not
//   deleted is logged; the CONNECT goes on, as it already did (finally runs either way).
// test/broker/patches/persistence-unheard-rejections.test.ts fails if an upgrade changes
// which commands the library leaves unawaited, or how Aedes calls delWill.
import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import { quietCommands } from './ioredis-quiet-resubscribe.js'

/** the commands asyncPersistence.js sends without awaiting them */
export const UNAWAITED_PERSISTENCE_COMMANDS = ['lrem', 'rpush'] as const

interface WillStore {
  delWill(client: { id: string, brokerId?: string }, cb?: (...args: unknown[]) => void): Promise<unknown> | unknown
}

/** `conn`: the connection given to aedes-persistence-redis; `persistence`: what it made from it. */
export function hearUnawaitedPersistenceCommands (conn: Redis, persistence: WillStore, log: Logger): void {
  quietCommands(conn, UNAWAITED_PERSISTENCE_COMMANDS)

  const delWill = persistence.delWill.bind(persistence)
  persistence.delWill = (client, cb) => {
    if (cb !== undefined) return delWill(client, cb) // callback style: errors reach cb
    return (delWill(client) as Promise<unknown>).catch((err: Error) => {
      log.warn({ err: err.message, clientId: client.id }, 'will not deleted (Redis failing): another node may still publish it')
      return null
    })
  }
}
