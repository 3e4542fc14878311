// SDK clients for end-to-end tests: a ThreadlineClient against a real node, closed by the
// test's teardown, and bounded waits on its typed events.
import type { Threadline } from '../../broker/server.js'
import { ThreadlineClient, type ClientEvents, type ThreadlineClientOptions } from '../../clients/sdk/index.js'
import { token } from './node.js'
import { DEFAULT_WAIT_MS, withTimeout } from './wait.js'

interface Teardownable { teardown(fn: () => unknown): void }

export const httpUrl = (node: Pick<Threadline, 'httpPort'>): string => `http://127.0.0.1:${node.httpPort}`

/** Quick reconnects, so tests that cut connections don't wait for production backoffs. */
export const FAST = { backoff: { minMs: 50, maxMs: 400 } } as const

export function sdkClient (t: Teardownable, node: Threadline, user: string, opts: Partial<ThreadlineClientOptions> = {}): ThreadlineClient {
  const client = new ThreadlineClient({
    url: httpUrl(node),
    token: token(node, user),
    deviceId: 'sdk',
    ...FAST,
    ...opts
  })
  t.teardown(() => client.close())
  return client
}

/** A client already online. */
export async function onlineClient (t: Teardownable, node: Threadline, user: string, opts: Partial<ThreadlineClientOptions> = {}): Promise<ThreadlineClient> {
  const client = sdkClient(t, node, user, opts)
  await withTimeout(client.connect(), `${user} to connect`)
  return client
}

type Args<K extends keyof ClientEvents> = Parameters<ClientEvents[K]>

/** The first `event` whose arguments `match`. */
export function nextEvent<K extends keyof ClientEvents> (client: ThreadlineClient, event: K, match: (...args: Args<K>) => boolean = () => true, ms = DEFAULT_WAIT_MS): Promise<Args<K>> {
  let listener: ClientEvents[K] | undefined
  const got = new Promise<Args<K>>((resolve) => {
    listener = ((...args: Args<K>) => { if (match(...args)) resolve(args) }) as ClientEvents[K]
    client.on(event, listener)
  })
  return withTimeout(got, `'${String(event)}' at ${client.userId}`, ms, () => { if (listener !== undefined) client.off(event, listener) })
}

/** Records every `event` from now on; `until(n)` waits for the n-th. */
export function recordEvents<K extends keyof ClientEvents> (client: ThreadlineClient, event: K): { got: Array<Args<K>>, until (n: number, ms?: number): Promise<Array<Args<K>>> } {
  const got: Array<Args<K>> = []
  const waiters = new Set<() => void>()
  client.on(event, ((...args: Args<K>) => {
    got.push(args)
    for (const w of [...waiters]) w()
  }) as ClientEvents[K])
  return {
    got,
    until (n, ms = DEFAULT_WAIT_MS) {
      let waiter: (() => void) | undefined
      const enough = new Promise<Array<Args<K>>>((resolve) => {
        waiter = () => { if (got.length >= n) resolve(got) }
        waiters.add(waiter)
        waiter()
      })
      return withTimeout(enough, `${n} '${String(event)}' events at ${client.userId} (${got.length} came)`, ms, () => { if (waiter !== undefined) waiters.delete(waiter) })
    }
  }
}

/** Resolves when the client reports this state (and transport, if given). */
export function state (client: ThreadlineClient, s: 'online' | 'offline' | 'connecting', transport?: 'mqtt' | 'longpoll', ms = DEFAULT_WAIT_MS): Promise<unknown> {
  if (client.state === s && (transport === undefined || client.transport === transport)) return Promise.resolve()
  return nextEvent(client, 'state', c => c.state === s && (transport === undefined || c.transport === transport), ms)
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)
