// Which conversations each connected user belongs to, kept in memory because Aedes'
// authorizeForward is synchronous and runs on every delivery (DESIGN.md §3: "every
// forward is checked again"). Loaded when a user's first device connects, dropped when
// the last one leaves. Changes are announced on the broker's emitter, so with
// mqemitter-redis every node of a cluster applies them.
import type { Aedes } from 'aedes'
import type { Logger } from './logger.js'
import type { Queryable } from './store/index.js'

export interface MembershipChange {
  conv_id: string
  added: string[]
  removed: string[]
}

// `$` topics are never matched by client wildcards [MQTT-4.7.2-1], and the ACL refuses
// client publishes to `$…`, so this channel is the broker's own.
export const MEMBERSHIP_TOPIC = '$threadline/membership'

interface Entry { convs: Set<string>, refs: number }

interface Emitter {
  on(topic: string, fn: (packet: { payload: Buffer | string }, cb: () => void) => void): void
  emit(packet: { topic: string, payload: Buffer }, cb: () => void): void
}
/** Aedes' message emitter (mqemitter or mqemitter-redis); its typings leave it out. */
export const emitterOf = (broker: Aedes): Emitter => (broker as unknown as { mq: Emitter }).mq

export class MembershipCache {
  readonly #users = new Map<string, Entry>()
  /** users whose conversations are being loaded → changes seen meanwhile */
  readonly #loading = new Map<string, number>()
  readonly #store: Queryable
  readonly #log: Logger
  #broker: Aedes | null = null

  constructor (store: Queryable, log: Logger) {
    this.#store = store
    this.#log = log
  }

  /** Starts listening for changes announced by any node (this one included). */
  attach (broker: Aedes): void {
    this.#broker = broker
    emitterOf(broker).on(MEMBERSHIP_TOPIC, (packet: { payload: Buffer | string }, cb: () => void) => {
      try {
        this.#apply(JSON.parse(packet.payload.toString()) as MembershipChange)
      } catch (err) {
        this.#log.error({ err }, 'bad membership change on the cluster channel')
      }
      cb()
    })
  }

  /** Loads (or shares) the conversations of a user whose device just connected. */
  async retain (userId: string): Promise<void> {
    const entry = this.#users.get(userId)
    if (entry) {
      entry.refs++
      return
    }
    // A change may land while the query runs; then the result may be stale: ask again.
    try {
      for (let attempt = 0; ; attempt++) {
        const before = this.#loading.get(userId) ?? 0
        this.#loading.set(userId, before)
        const rows = await this.#store.query<{ conv_id: string }>('SELECT conv_id FROM members WHERE user_id = $1', [userId])
        const raced = this.#users.get(userId)
        if (raced) { // another device of the same user loaded it meanwhile
          raced.refs++
          return
        }
        if (this.#loading.get(userId) === before || attempt >= 5) {
          this.#users.set(userId, { convs: new Set(rows.map(r => r.conv_id)), refs: 1 })
          return
        }
      }
    } finally {
      this.#loading.delete(userId)
    }
  }

  release (userId: string): void {
    const entry = this.#users.get(userId)
    if (!entry) return
    if (--entry.refs <= 0) this.#users.delete(userId)
  }

  /** Synchronous view for delivery checks; undefined when the user has no device here. */
  convsOf (userId: string): ReadonlySet<string> | undefined {
    return this.#users.get(userId)?.convs
  }

  async isMember (convId: string, userId: string): Promise<boolean> {
    const convs = this.convsOf(userId)
    if (convs) return convs.has(convId)
    const rows = await this.#store.query('SELECT 1 FROM members WHERE conv_id = $1 AND user_id = $2', [convId, userId])
    return rows.length > 0
  }

  /**
   * Call after the membership change is committed. Applied here at once (so this node's
   * next check sees it) and announced to the others.
   */
  async announce (change: MembershipChange): Promise<void> {
    this.#apply(change)
    const broker = this.#broker
    if (!broker) return
    await new Promise<void>((resolve) => {
      emitterOf(broker).emit({ topic: MEMBERSHIP_TOPIC, payload: Buffer.from(JSON.stringify(change)) }, () => resolve())
    })
  }

  #apply (change: MembershipChange): void {
    for (const userId of [...change.added, ...change.removed]) {
      const seen = this.#loading.get(userId)
      if (seen !== undefined) this.#loading.set(userId, seen + 1)
    }
    for (const userId of change.added) this.#users.get(userId)?.convs.add(change.conv_id)
    for (const userId of change.removed) this.#users.get(userId)?.convs.delete(change.conv_id)
  }
}
