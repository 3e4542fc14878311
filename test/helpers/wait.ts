// Bounded waits: every wait of a test ends, and one that times out says what it awaited,
// so a broken test fails in seconds with a reason instead of hanging until tap's timeout.
import { setTimeout as delay } from 'node:timers/promises'

export const DEFAULT_WAIT_MS = 10_000

export class WaitTimeout extends Error {
  constructor (what: string, ms: number) {
    super(`timed out after ${ms} ms waiting for ${what}`)
    this.name = 'WaitTimeout'
  }
}

/**
 * Settles like `promise`, or rejects with WaitTimeout naming `what` after `ms`;
 * `cleanup` runs either way (to remove the listeners the promise was waiting with).
 */
export function withTimeout<T> (promise: Promise<T>, what: string, ms = DEFAULT_WAIT_MS, cleanup?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new WaitTimeout(what, ms)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer)
    cleanup?.()
  })
}

/**
 * For states that announce themselves by no event (a row in pg_stat_activity, a key in
 * Redis): checks `condition` every `everyMs` until it holds, for at most `ms`.
 */
export async function waitFor (condition: () => boolean | Promise<boolean>, what: string, ms = DEFAULT_WAIT_MS, everyMs = 20): Promise<void> {
  const deadline = Date.now() + ms
  while (!await condition()) {
    if (Date.now() >= deadline) throw new WaitTimeout(what, ms)
    await delay(everyMs)
  }
}
