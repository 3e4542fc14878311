// Which conversations each connected user belongs to, kept in memory because Aedes'
// authorizeForward is synchronous and runs on every delivery (DESIGN.md §3: "every
// forward is checked again"). Loaded when a user's first device connects, dropped when
// the last one leaves. Only delivery checks read it: authorization that guards stored
// data (SUBSCRIBE, REST history) asks the store (isMember).
//
// Changes reach every node two ways. Fast: announced on the broker's emitter (with
// mqemitter-redis, every node of a cluster applies them at once). Sure: written to the
// membership change log in the transaction that makes them, which every node reads
// every second (membership-catchup.ts), so a lost announcement, or a node killed between
// commit and announcement, delays a change by about a second at most. Each logged change
// carries its log id; a conversation's ids follow its commit order (its row lock), so a
// change older than one already applied to that conversation is skipped: applying a row
// twice, or an announcement that arrives after the log delivered a later change, is
// harmless.
//
// Redis pub/sub keeps nothing for a subscriber that is away: announcements made while
// this node's subscriber connection is down are lost to it. So from the moment that
// connection drops the cache counts as stale: deliveries on conversation topics are
// withheld (fail closed; the inbox does not depend on the cache, and a device fills the
// seq gap from the history API) until the connection is back and every cached user has
// been read again. (The log alone would bound the staleness to a second here too; this
// stricter mode predates it and also covers changes written without a log row.)
import { performance } from 'node:perf_hooks'
import type { Aedes } from 'aedes'
import type { Logger } from './logger.js'
import { MembershipCatchUp, type CatchUpTarget, type Clock } from './membership-catchup.js'
import type { LoggedChange } from '../core/membership/change-log.js'
import type { MembershipChange } from '../core/membership/notify.js'
import type { Queryable } from './store/index.js'

// `$` topics are never matched by client wildcards [MQTT-4.7.2-1], and the ACL refuses
// client publishes to `$…`, so this channel is the broker's own.
export const MEMBERSHIP_TOPIC = '$threadline/membership'

/** how long to wait before trying a failed resync again (the store may be down too) */
const RESYNC_RETRY_MS = 1000

/** `convs` null: none (a user in no conversation keeps no Set) */
const NO_CONVS: ReadonlySet<string> = new Set()

interface Emitter {
  on(topic: string, fn: (packet: { payload: Buffer | string }, cb: () => void) => void): void
  emit(packet: { topic: string, payload: Buffer }, cb: (err?: Error) => void): void
}
/** Aedes' message emitter (mqemitter or mqemitter-redis); its typings leave it out. */
export const emitterOf = (broker: Aedes): Emitter => (broker as unknown as { mq: Emitter }).mq

/** mqemitter-redis' subscriber connection (an ioredis client); absent on a single node. */
interface Subscriber {
  on(event: 'close' | 'ready', fn: () => void): unknown
  ping(): Promise<unknown>
  readonly status: string
}
function subscriberOf (emitter: Emitter): Subscriber | null {
  const sub = (emitter as unknown as { subConn?: Subscriber }).subConn
  return sub !== undefined && typeof sub.ping === 'function' ? sub : null
}

export class MembershipCache {
  /** user → this node's devices of the user (connected users only) */
  readonly #refs = new Map<string, number>()
  /** user → conversations, for connected users in at least one (a user in none costs one entry of #refs) */
  readonly #convs = new Map<string, Set<string>>()
  /** users whose conversations are being loaded → changes seen meanwhile */
  readonly #loading = new Map<string, number>()
  readonly #store: Queryable
  readonly #log: Logger
  #broker: Aedes | null = null
  /** set while announcements may have been missed (see the top of this file) */
  #stale = false
  /** changes that arrive while a reload reads the store, applied again on top of it (one list per reload) */
  readonly #duringReload = new Set<MembershipChange[]>()
  /** conversation → the newest log id applied to it, and when (#now) */
  readonly #applied = new Map<string, { id: number, at: number }>()
  readonly #catchUp: MembershipCatchUp
  #resyncing: Promise<void> | null = null
  readonly #waiters = { stale: [] as Array<() => void>, fresh: [] as Array<() => void> }
  #detached = false
  readonly #changeListeners: Array<(change: MembershipChange) => void> = []

  readonly #now: Clock

  /** `now`: the clock of the log's timings (tests pass their own) */
  constructor (store: Queryable, log: Logger, now: Clock = () => performance.now()) {
    this.#store = store
    this.#log = log
    this.#now = now
    const target: CatchUpTarget = {
      applyLogged: (row) => this.#applyLogged(row),
      reload: async () => { await this.#reload() },
      forgetBefore: (ms) => {
        for (const [convId, applied] of this.#applied) if (applied.at < ms) this.#applied.delete(convId)
      }
    }
    this.#catchUp = new MembershipCatchUp(store, target, log, now)
  }

  /** Starts listening for changes announced by any node (this one included). */
  attach (broker: Aedes): void {
    this.#broker = broker
    const emitter = emitterOf(broker)
    emitter.on(MEMBERSHIP_TOPIC, (packet: { payload: Buffer | string }, cb: () => void) => {
      try {
        this.#apply(JSON.parse(packet.payload.toString()) as MembershipChange)
      } catch (err) {
        this.#log.error({ err }, 'bad membership change on the cluster channel')
      }
      cb()
    })
    this.#catchUp.start()
    broker.once('closed', () => { this.#catchUp.stop() })
    const sub = subscriberOf(emitter)
    if (sub === null) return
    sub.on('close', () => {
      if (this.#detached || this.#stale) return
      this.#stale = true
      this.#log.warn('cluster channel lost: membership cache stale until it is back')
      for (const wake of this.#waiters.stale.splice(0)) wake()
    })
    sub.on('ready', () => {
      if (this.#detached) return
      // whatever this node read of the log meanwhile, read it now rather than in a second
      this.catchUp().catch((err: unknown) => this.#log.warn({ err }, 'membership log not readable after the cluster channel came back'))
      if (this.#stale) this.#resyncing ??= this.#resync(sub).finally(() => { this.#resyncing = null })
    })
    broker.once('closed', () => { this.#detached = true })
  }

  /** Loads (or shares) the conversations of a user whose device just connected. */
  async retain (userId: string): Promise<void> {
    const refs = this.#refs.get(userId)
    if (refs !== undefined) {
      this.#refs.set(userId, refs + 1)
      return
    }
    // A change may land while the query runs; then the result may be stale: ask again.
    try {
      for (let attempt = 0; ; attempt++) {
        const before = this.#loading.get(userId) ?? 0
        this.#loading.set(userId, before)
        const rows = await this.#store.query<{ conv_id: string }>('SELECT conv_id FROM members WHERE user_id = $1', [userId])
        const raced = this.#refs.get(userId)
        if (raced !== undefined) { // another device of the same user loaded it meanwhile
          this.#refs.set(userId, raced + 1)
          return
        }
        if (this.#loading.get(userId) === before || attempt >= 5) {
          this.#refs.set(userId, 1)
          if (rows.length > 0) this.#convs.set(userId, new Set(rows.map(r => r.conv_id)))
          return
        }
      }
    } finally {
      this.#loading.delete(userId)
    }
  }

  release (userId: string): void {
    const refs = this.#refs.get(userId)
    if (refs === undefined) return
    if (refs > 1) {
      this.#refs.set(userId, refs - 1)
      return
    }
    this.#refs.delete(userId)
    this.#convs.delete(userId)
  }

  /**
   * Synchronous view for delivery checks; undefined when the user has no device here,
   * and for everyone while the cache is stale (callers then withhold conversation
   * deliveries).
   */
  convsOf (userId: string): ReadonlySet<string> | undefined {
    if (this.#stale) return undefined
    if (!this.#refs.has(userId)) return undefined
    return this.#convs.get(userId) ?? NO_CONVS
  }

  /**
   * The store's answer, never the cache's: what this guards (a SUBSCRIBE, a history read)
   * hands out stored data, so it must not trust a cache that may be a second behind.
   * One primary-key lookup.
   */
  async isMember (convId: string, userId: string): Promise<boolean> {
    const rows = await this.#store.query('SELECT 1 FROM members WHERE conv_id = $1 AND user_id = $2', [convId, userId])
    return rows.length > 0
  }

  /** true while announcements may have been missed (between a lost cluster channel and the resync) */
  get stale (): boolean { return this.#stale }

  /** Resolves once the cache is stale (at once when it is). */
  whenStale (): Promise<void> {
    if (this.#stale) return Promise.resolve()
    return new Promise(resolve => this.#waiters.stale.push(resolve))
  }

  /** Resolves once the cache is not stale (at once when it is not). */
  whenFresh (): Promise<void> {
    if (!this.#stale) return Promise.resolve()
    return new Promise(resolve => this.#waiters.fresh.push(resolve))
  }

  /**
   * Call after the membership change is committed. Applied here at once (so this node's
   * next check sees it) and announced to the others. Rejects when the announcement
   * could not be published: other nodes then learn the change from the change log
   * within about a second (when it was logged, i.e. `change.id` is set).
   */
  async announce (change: MembershipChange): Promise<void> {
    this.#apply(change)
    const broker = this.#broker
    if (!broker) return
    await new Promise<void>((resolve, reject) => {
      emitterOf(broker).emit({ topic: MEMBERSHIP_TOPIC, payload: Buffer.from(JSON.stringify(change)) }, (err) => {
        if (err) reject(err)
        else resolve()
      })
    })
  }

  /**
   * Listens for membership changes as this node learns them (its own, announced by
   * other nodes, or read from the change log): once per change and node.
   */
  onChange (listener: (change: MembershipChange) => void): () => void {
    this.#changeListeners.push(listener)
    return () => {
      const i = this.#changeListeners.indexOf(listener)
      if (i >= 0) this.#changeListeners.splice(i, 1)
    }
  }

  /** Reads the change log now (after a read in progress, if any); rejects when the store fails. */
  catchUp (): Promise<void> {
    return this.#catchUp.run()
  }

  #applyLogged (row: LoggedChange): void {
    this.#apply({
      id: row.id,
      conv_id: row.conv_id,
      added: row.change === 'added' ? row.user_ids : [],
      removed: row.change === 'removed' ? row.user_ids : []
    })
  }

  /** `force`: apply even if a later change of the conversation was applied (a reload replays what it may have missed) */
  #apply (change: MembershipChange, force = false): void {
    if (change.id !== undefined && !force) {
      const applied = this.#applied.get(change.conv_id)
      if (applied !== undefined && applied.id >= change.id) return // already applied, or older than what was
      this.#applied.set(change.conv_id, { id: change.id, at: this.#now() })
    }
    for (const during of this.#duringReload) during.push(change)
    for (const userId of [...change.added, ...change.removed]) {
      const seen = this.#loading.get(userId)
      if (seen !== undefined) this.#loading.set(userId, seen + 1)
    }
    for (const userId of change.added) {
      if (!this.#refs.has(userId)) continue
      const convs = this.#convs.get(userId)
      if (convs !== undefined) convs.add(change.conv_id)
      else this.#convs.set(userId, new Set([change.conv_id]))
    }
    for (const userId of change.removed) {
      const convs = this.#convs.get(userId)
      if (convs?.delete(change.conv_id) === true && convs.size === 0) this.#convs.delete(userId)
    }
    // a forced apply replays a change the listeners already heard
    if (force) return
    for (const listener of this.#changeListeners) {
      try {
        listener(change)
      } catch (err) {
        this.#log.error({ err, conv_id: change.conv_id }, 'membership change listener failed')
      }
    }
  }

  /** Reads every cached user's conversations again, after the cluster channel came back. */
  async #resync (sub: Subscriber): Promise<void> {
    while (!this.#detached) {
      try {
        // ioredis re-sends the SUBSCRIBEs when the connection is ready; the PING's answer
        // comes after them, so from here on no announcement is missed, and every change
        // announced before was committed before, so the query below sees it.
        await sub.ping()
        const users = await this.#reload()
        this.#stale = false
        this.#log.info({ users }, 'membership cache read again after the cluster channel came back')
        for (const wake of this.#waiters.fresh.splice(0)) wake()
        return
      } catch (err) {
        this.#log.warn({ err }, 'membership resync failed; trying again')
        if (sub.status === 'end') return
        await new Promise<void>(resolve => setTimeout(resolve, RESYNC_RETRY_MS).unref())
      }
    }
  }

  /** Reads every cached user's conversations again; answers how many users. */
  async #reload (): Promise<number> {
    const late: MembershipChange[] = []
    this.#duringReload.add(late)
    try {
      const users = [...this.#refs.keys()]
      const rows = await this.#store.query<{ user_id: string, conv_id: string }>(
        'SELECT user_id, conv_id::text AS conv_id FROM members WHERE user_id = ANY($1::text[])', [users])
      const fresh = new Map(users.map(u => [u, new Set<string>()]))
      for (const r of rows) fresh.get(r.user_id)?.add(r.conv_id)
      for (const [userId, convs] of fresh) {
        // a user released while the query ran is not cached again
        if (!this.#refs.has(userId)) continue
        if (convs.size > 0) this.#convs.set(userId, convs)
        else this.#convs.delete(userId)
      }
      this.#duringReload.delete(late)
      // what arrived while the query ran may be newer than what it read
      for (const change of late) this.#apply(change, true)
      return users.length
    } finally {
      this.#duringReload.delete(late)
    }
  }
}
