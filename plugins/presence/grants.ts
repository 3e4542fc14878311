// Who may receive whose presence on this node. Visibility needs the store, so it is
// decided at SUBSCRIBE (and again when a persistent session's subscriptions are restored)
// and remembered as a grant per connection; delivery (authorizeForward, synchronous, on
// every packet) only looks the grant up. Grants are taken back when the answer may have
// changed: the subject changed their setting (announced to every node), a viewer or
// subject left a conversation (membershipChanged, on every node), the node may have
// missed announcements (its cluster channel was down), and once a minute as a backstop.
// A withdrawn grant stays withdrawn until the viewer subscribes again, even if the
// setting widens meanwhile: visibility is only ever widened by a fresh check.
import type { Client } from 'aedes'
import { identityOf } from '../../broker/identity.js'
import type { Logger } from '../../broker/logger.js'
import type { Queryable } from '../../core/store.js'
import { canSee, visiblePairs } from '../../core/presence/visibility.js'

/** pairs per re-check query */
const RECHECK_CHUNK = 1000

type Closable = Client & { closed?: boolean }

export interface RecheckFilter {
  /** grants of these subjects' presence */
  readonly subjects?: ReadonlySet<string>
  /** grants held by connections of these viewers */
  readonly viewers?: ReadonlySet<string>
}

export class PresenceGrants {
  readonly #byClient = new Map<Client, Set<string>>()
  readonly #store: Queryable
  readonly #log: Logger
  readonly #maxPerClient: number
  /** bumped by every re-check, so a SUBSCRIBE whose query raced one checks again */
  #epoch = 0

  constructor (store: Queryable, log: Logger, maxPerClient: number) {
    this.#store = store
    this.#log = log
    this.#maxPerClient = maxPerClient
  }

  /** A SUBSCRIBE to presence/<subject> by `viewer`'s connection `client`: allowed, and granted? */
  async authorize (client: Client, viewer: string, subject: string): Promise<boolean> {
    const granted = this.#byClient.get(client)
    if (!granted?.has(subject) && (granted?.size ?? 0) >= this.#maxPerClient) return false
    const epoch = this.#epoch
    if (!await canSee(this.#store, viewer, subject)) {
      granted?.delete(subject)
      return false
    }
    if ((client as Closable).closed === true) return false
    const set = this.#byClient.get(client) ?? new Set<string>()
    set.add(subject)
    this.#byClient.set(client, set)
    // a setting or membership changed while the query ran: the re-check may have missed this grant
    if (this.#epoch !== epoch) void this.recheck({ subjects: new Set([subject]), viewers: new Set([viewer]) })
    return true
  }

  allows (client: Client, subject: string): boolean {
    return this.#byClient.get(client)?.has(subject) ?? false
  }

  /** An UNSUBSCRIBE: the grants of those topics go. */
  drop (client: Client, subjects: readonly string[]): void {
    const set = this.#byClient.get(client)
    if (set === undefined) return
    for (const s of subjects) set.delete(s)
    if (set.size === 0) this.#byClient.delete(client)
  }

  forget (client: Client): void {
    this.#byClient.delete(client)
  }

  get size (): number {
    let n = 0
    for (const set of this.#byClient.values()) n += set.size
    return n
  }

  /**
   * Asks the store again for the grants that match `filter` (all of them without one)
   * and withdraws those no longer allowed. Resolves when done; a store failure is logged
   * and the grants stay until the next re-check.
   */
  async recheck (filter: RecheckFilter = {}): Promise<void> {
    this.#epoch++
    const pairs: Array<{ client: Client, viewer: string, subject: string }> = []
    for (const [client, subjects] of this.#byClient) {
      const viewer = identityOf(client)?.userId
      if ((client as Closable).closed === true || viewer === undefined) {
        this.#byClient.delete(client)
        continue
      }
      const viewerMatches = filter.viewers?.has(viewer) ?? false
      for (const subject of subjects) {
        const all = filter.subjects === undefined && filter.viewers === undefined
        if (all || viewerMatches || (filter.subjects?.has(subject) ?? false)) pairs.push({ client, viewer, subject })
      }
    }
    try {
      for (let i = 0; i < pairs.length; i += RECHECK_CHUNK) {
        const chunk = pairs.slice(i, i + RECHECK_CHUNK)
        const allowed = await visiblePairs(this.#store, chunk.map(p => [p.viewer, p.subject] as const))
        chunk.forEach((p, k) => {
          if (allowed.has(k)) return
          this.drop(p.client, [p.subject])
          this.#log.debug({ clientId: p.client.id, subject: p.subject }, 'presence: grant withdrawn')
        })
      }
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'presence: grants not re-checked (store unreachable); the next re-check retries')
    }
  }
}
