// Every stored send is also published on conv/<c>/events, for the members and integrators
// who follow a conversation there (docs/protocol.md), and most conversations have no such
// follower. Such a publish still runs Aedes' whole pipeline (the offline-queue lookup, the
// emitter, the 'publish' listeners): a third of a direct send's publishes, for nothing. On
// a node whose broker state is in memory nobody else's clients can subscribe, so the send
// path skips it when no subscription could take it:
// - no live subscription matches: the emitter's own matcher (online clients, clean or not);
// - no persistent session has ever stored a filter that could: a clean=false session's
//   offline queue gets what its stored filters match. An over-approximation that only
//   grows (a conversation stays published until the node restarts, however its follower's
//   session ends), so it never skips what a session would have queued.
// With Redis the emitter carries each publish to the other nodes, whose clients this node
// does not know: nothing is skipped there (no EventsAudience is made).
import type { Aedes } from 'aedes'

interface Matcher { match(topic: string): unknown[] }
interface Persistence { addSubscriptions(client: unknown, subs: Array<{ topic: string }>): Promise<unknown> }

/**
 * The conversation whose events `filter` can match ('all': any conversation's), or null
 * when it matches no conv/<c>/events topic (MQTT wildcards: `+` one level, `#` the rest,
 * the parent level included).
 */
export function eventsFollowedBy (filter: string): string | 'all' | null {
  const l = filter.split('/')
  if (l[0] === '#') return 'all'
  if ((l[0] !== 'conv' && l[0] !== '+') || l.length < 2) return null
  const conv = l[1] as string
  if (conv === '#') return 'all'
  if (l.length < 3 || (l[2] !== 'events' && l[2] !== '+' && l[2] !== '#')) return null
  if (l.length > 4 || (l.length === 4 && (l[2] === '#' || l[3] !== '#'))) return null
  return conv === '+' ? 'all' : conv
}

export class EventsAudience {
  readonly #matcher: Matcher
  #all = false
  readonly #convs = new Set<string>()

  /** `broker`: in-memory state (its own MQEmitter and memory persistence); before it has clients */
  constructor (broker: Aedes) {
    const { mq, persistence } = broker as unknown as { mq: { _matcher?: Matcher }, persistence: Persistence }
    const matcher = mq._matcher
    if (typeof matcher?.match !== 'function' || typeof persistence.addSubscriptions !== 'function') {
      throw new Error('mqemitter or aedes-persistence internals changed: broker/events-audience.ts needs an update')
    }
    this.#matcher = matcher
    const add = persistence.addSubscriptions.bind(persistence)
    persistence.addSubscriptions = (client, subs) => {
      for (const sub of subs) this.#note(sub.topic)
      return add(client, subs)
    }
  }

  /** Whether a publish on `topic` (conv/<convId>/events) may reach a subscriber. */
  mayReach (topic: string, convId: string): boolean {
    return this.#all || this.#convs.has(convId) || this.#matcher.match(topic).length > 0
  }

  #note (filter: string): void {
    const conv = eventsFollowedBy(filter)
    if (conv === 'all') this.#all = true
    else if (conv !== null) this.#convs.add(conv)
  }
}

const EVENTS_PREFIX = 'conv/'
const EVENTS_SUFFIX = '/events'

/** The conversation of a conv/<c>/events topic, or null for any other topic. */
export function eventsConvOf (topic: string): string | null {
  return topic.startsWith(EVENTS_PREFIX) && topic.endsWith(EVENTS_SUFFIX) && topic.length > EVENTS_PREFIX.length + EVENTS_SUFFIX.length
    ? topic.slice(EVENTS_PREFIX.length, -EVENTS_SUFFIX.length)
    : null
}
