// Refused topics leave persistent sessions (DESIGN.md §3). Aedes 1.x stores the whole
// SUBSCRIBE packet of a clean=false client as soon as one of its topics is granted
// (handlers/subscribe.js, storeSubscriptions), refused topics included; at a clean=false
// reconnect it checks the stored topics again but keeps the refused ones stored. Every
// stored topic gets offline packets queued for it. The delivery check (authorizeForward)
// withholds those packets, but they still pile up: without bound in memory, and in Redis
// they push the session's own events out of its capped queue. So refused topics are
// removed from the stored session; authorizeForward stays the guard for the window before.
import type { Aedes, Client, Subscription } from 'aedes'
import type { Logger } from '../../broker/logger.js'

/** The part of Aedes' persistence we use; its typings leave persistence out. */
interface SessionStore { removeSubscriptions(client: Client, topics: string[]): Promise<unknown> }

/** Topics refused while a clean=false reconnect restored its session, per client. */
const refusedAtRestore = new WeakMap<Client, string[]>()

const liveTopics = (client: Client): Record<string, unknown> =>
  (client as unknown as { subscriptions: Record<string, unknown> }).subscriptions

/**
 * Called by the ACL when it refuses `topic`. During CONNECT (Aedes restoring a persistent
 * session) the topic is remembered and removed once the client is ready: after its
 * offline queue was emptied, so the removal cannot race the restore.
 */
export function noteRefused (client: Client, topic: string): void {
  if (client.clean || client.connected) return // a SUBSCRIBE: handled on 'subscribe'
  const topics = refusedAtRestore.get(client)
  if (topics) topics.push(topic)
  else refusedAtRestore.set(client, [topic])
}

/** Installs the listeners; returns their removal (the plugin's teardown). */
export function pruneRefusedTopics (broker: Aedes, log: Logger): () => void {
  const store = (broker as unknown as { persistence: SessionStore }).persistence
  const remove = (client: Client, topics: string[]): void => {
    // A topic that is live on the connection was granted (by this SUBSCRIBE's
    // predecessor or meanwhile): Aedes keeps it, and so does the stored session.
    const live = liveTopics(client)
    const stale = topics.filter(topic => live[topic] === undefined)
    if (stale.length === 0) return
    store.removeSubscriptions(client, stale).catch((err: unknown) => {
      log.warn({ err, clientId: client.id, topics: stale }, 'refused topics not removed from the stored session')
    })
  }
  // emitted after the SUBACK, once every granted topic of the packet has been stored
  const onSubscribe = (subs: Subscription[], client: Client): void => {
    if (client.clean) return
    const refused = subs.filter(sub => (sub.qos as number) === 128).map(sub => sub.topic)
    if (refused.length > 0) remove(client, refused)
  }
  const onReady = (client: Client): void => {
    const topics = refusedAtRestore.get(client)
    if (topics === undefined) return
    refusedAtRestore.delete(client)
    remove(client, topics)
  }
  broker.on('subscribe', onSubscribe)
  broker.on('clientReady', onReady)
  return () => {
    broker.off('subscribe', onSubscribe)
    broker.off('clientReady', onReady)
  }
}
