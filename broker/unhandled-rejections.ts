// What the process does with a rejected promise nobody listens to. Node 20's default is to
// end the process. Every source known is fixed where it starts (broker/patches/,
// test/cluster/redis-hang-unhandled.test.ts), so this is the net for what nobody has found
// yet, and it logs and keeps running:
// - a rejection nobody listened to belongs to work whose starter had already stopped
//   waiting for it: its failure is lost either way, and ending the process doesn't bring
//   it back;
// - ending the process drops every connection of the node at once, into a reconnect storm
//   on the other nodes (or on this one when it restarts) — the load under which Redis
//   commands time out, which is how these rejections arose in the first place;
// - nothing acknowledged is lost either way: PostgreSQL holds every committed send, and a
//   PUBACK is only sent after the commit.
// Synchronous throws nobody catches (uncaughtException) still end the process: one may
// have stopped a state change half-way, which a rejection of a promise nobody awaits
// cannot do to anything still in use.
// Logged at error with the stack: each one is a bug to fix at its source.
import type { Logger } from './logger.js'

/** Installs the handler; returns a function that removes it. */
export function logUnhandledRejections (log: Logger): () => void {
  const listener = (reason: unknown): void => {
    if (reason instanceof Error) log.error({ err: reason }, 'unhandled rejection: a failure nobody waited for (a bug); the node keeps running')
    else log.error({ reason: String(reason) }, 'unhandled rejection: a failure nobody waited for (a bug); the node keeps running')
  }
  process.on('unhandledRejection', listener)
  return () => { process.off('unhandledRejection', listener) }
}
