// Works around aedes-persistence-redis 11.2 (see below); applied in broker/broker-state.ts.
// Exercised end to end by test/acl/redis-multi-subscribe.test.ts, where the race does not
// show in every run; test/broker/patches/redis-subscription-changes.test.ts holds the
// broadcasts so that it always does, and fails if an upgrade changes how Aedes calls
// addSubscriptions or how the persistence waits for its broadcast.

export interface SubscriptionStore {
  addSubscriptions(client: { id: string }, subs: object[]): Promise<unknown>
  removeSubscriptions(client: { id: string }, topics: string[]): Promise<unknown>
}

/**
 * aedes-persistence's BroadcastPersistence (inside aedes-persistence-redis) waits for its
 * own broadcast of a subscription change under the key clientId + first topic, one
 * waiter per key. Aedes calls addSubscriptions once per granted topic of a clean=false
 * SUBSCRIBE, each time with the whole packet, so a SUBSCRIBE with two granted topics
 * registers two waiters under one key: one is overwritten and its promise never
 * settles, and the client never gets its SUBACK. Calls for one packet are coalesced
 * into one, and one client's subscription changes run one at a time.
 */
export function serializeSubscriptionChanges (persistence: SubscriptionStore): void {
  const add = persistence.addSubscriptions.bind(persistence)
  const remove = persistence.removeSubscriptions.bind(persistence)
  const tails = new Map<string, Promise<unknown>>()
  const pendingPackets = new WeakMap<object[], Promise<unknown>>()
  const oneAtATime = <T>(clientId: string, fn: () => Promise<T>): Promise<T> => {
    const run = (tails.get(clientId) ?? Promise.resolve()).then(fn, fn)
    const tail = run.then(() => {}, () => {})
    tails.set(clientId, tail)
    void tail.then(() => { if (tails.get(clientId) === tail) tails.delete(clientId) })
    return run
  }
  persistence.addSubscriptions = (client, subs) => {
    const pending = pendingPackets.get(subs) // Aedes passes the packet's own array each time
    if (pending !== undefined) return pending
    const run = oneAtATime(client.id, () => add(client, subs))
    pendingPackets.set(subs, run)
    return run
  }
  persistence.removeSubscriptions = (client, topics) => oneAtATime(client.id, () => remove(client, topics))
}
