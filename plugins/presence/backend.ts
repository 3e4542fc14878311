// Where the connected devices of every user live, and the one rule that turns them into a
// presence state. Two drivers with the same behaviour, checked by one shared test suite
// (test/presence/backend.test.ts): in memory (a single node) and in Redis (a cluster,
// redis-backend.ts, where the same rule runs as Lua so that each change happens once).
//
// The rule, per user:
// - devices connected anywhere, one of them active → `online`; all of them away → `away`;
// - the last device gone → the state stays as it was for the grace period (a reconnect
//   within it changes nothing), then `offline` with last_seen = when the last one went;
// - a node that stops renewing its heartbeat for `deadAfterMs` is dead: its devices are
//   removed, and users left without devices go offline at once, last seen at its last
//   heartbeat.
// Every call that changes the state returns the transition to that one caller, which
// publishes it and confirms it (`published`): one publish per change, however many nodes
// there are. A change nobody confirmed (its caller was told the call failed, yet it ran)
// is handed out again by `unpublished`, so it is published at least once.
import type { PresenceState } from '../../core/presence/service.js'

/** One device of this node as the backend keeps it: `conn` starts with `<nodeId>/`. */
export interface DeviceView {
  readonly conn: string
  readonly away: boolean
}

export interface Transition {
  readonly userId: string
  readonly state: PresenceState
  /** epoch ms, for `offline` */
  readonly lastSeenMs?: number
  /** what `published` confirms (drivers whose calls may run unseen) */
  readonly token?: string
}

export interface SyncResult {
  readonly transition: Transition | null
  /** the user has no device left and goes offline at this time (epoch ms) unless one comes back */
  readonly pendingUntilMs: number | null
}

export interface BackendOptions {
  /** this node, unique in the cluster (the broker id) */
  readonly nodeId: string
  readonly graceMs: number
  /** a node whose heartbeat is older than this is dead */
  readonly deadAfterMs: number
  /** a change not confirmed published after this long is handed out again */
  readonly staleMs: number
}

export interface PresenceBackend {
  /**
   * This node's devices of `userId` are now exactly `devices` (the others' are left as
   * they are). `atMs`: when this view was taken, the departure time of the node's last
   * device of the user when `devices` is empty. The backend may keep `devices` as it is:
   * the caller hands it over and never changes it.
   */
  sync(userId: string, devices: readonly DeviceView[], atMs: number): Promise<SyncResult>
  /** Ends `userId`'s grace period if it is due at `nowMs`. */
  settle(userId: string, nowMs: number): Promise<Transition | null>
  /** Ends up to `limit` grace periods due at `nowMs`, whoever started them. */
  settleDue(nowMs: number, limit: number): Promise<Transition[]>
  /** Renews this node's heartbeat; true when other nodes had taken it for dead and removed its devices. */
  heartbeat(nowMs: number): Promise<boolean>
  /** Removes the devices of dead nodes, at most `limit` users' worth per call. */
  reapDead(nowMs: number, limit: number): Promise<Transition[]>
  /** The transition `t` was published. */
  published(t: Transition): Promise<void>
  /** Changes not confirmed published for staleMs, claimed for this caller to publish (at most `limit`). */
  unpublished(nowMs: number, limit: number): Promise<Transition[]>
  /** The current state of each user (absent: offline). */
  states(userIds: readonly string[]): Promise<Map<string, Exclude<PresenceState, 'offline'>>>
  /** Of `userIds`, those with a device connected on some node. */
  connected(userIds: readonly string[]): Promise<Set<string>>
  /** A clean exit: this node stops counting as a node (once its devices were synced away). */
  leave(): Promise<void>
  close(): Promise<void>
}

interface UserRecord {
  /** every node's devices of the user: on a single node the array sync() was given (no copy, no Map per user) */
  devices: readonly DeviceView[]
  state: Exclude<PresenceState, 'offline'> | null
  goneAtMs: number | null
}

/** What every node of an in-memory "cluster" shares: one per process in production, several backends per world in tests. */
export class MemoryWorld {
  readonly users = new Map<string, UserRecord>()
  /** user → when their grace period ends */
  readonly pending = new Map<string, number>()
  /** node → last heartbeat */
  readonly nodes = new Map<string, number>()
  /** nodes that were taken for dead while they may still run */
  readonly reaped = new Set<string>()
  /** user → the change not confirmed published yet, and when it was written or claimed */
  readonly outbox = new Map<string, { transition: Transition, at: number }>()
  seq = 0
}

const nodeOf = (conn: string): string => conn.slice(0, conn.lastIndexOf('/'))

/**
 * The users with a device on `node`, found by a walk over all of them rather than kept in
 * an index per node: it is asked only when a node dies or leaves, and an index would cost
 * every connected user an entry.
 */
function usersOn (w: MemoryWorld, node: string): Array<[string, UserRecord]> {
  return [...w.users].filter(([, rec]) => rec.devices.some(d => nodeOf(d.conn) === node))
}

export class MemoryBackend implements PresenceBackend {
  readonly #world: MemoryWorld
  readonly #opts: BackendOptions

  constructor (opts: BackendOptions, world = new MemoryWorld()) {
    this.#opts = opts
    this.#world = world
  }

  async sync (userId: string, devices: readonly DeviceView[], atMs: number): Promise<SyncResult> {
    const w = this.#world
    const node = this.#opts.nodeId
    let rec = w.users.get(userId)
    if (rec === undefined) {
      rec = { devices, state: null, goneAtMs: null }
      w.users.set(userId, rec)
    } else {
      const others = rec.devices.filter(d => nodeOf(d.conn) !== node)
      rec.devices = others.length === 0 ? devices : [...others, ...devices]
    }
    if (devices.length > 0 && !w.nodes.has(node)) w.nodes.set(node, atMs)
    return this.#recompute(userId, rec, atMs, this.#opts.graceMs, Date.now())
  }

  async settle (userId: string, nowMs: number): Promise<Transition | null> {
    const due = this.#world.pending.get(userId)
    if (due === undefined || due > nowMs) return null
    return this.#finish(userId, nowMs)
  }

  async settleDue (nowMs: number, limit: number): Promise<Transition[]> {
    const out: Transition[] = []
    for (const [userId, due] of [...this.#world.pending]) {
      if (out.length >= limit) break
      if (due > nowMs) continue
      const t = this.#finish(userId, nowMs)
      if (t !== null) out.push(t)
    }
    return out
  }

  async heartbeat (nowMs: number): Promise<boolean> {
    this.#world.nodes.set(this.#opts.nodeId, nowMs)
    return this.#world.reaped.delete(this.#opts.nodeId)
  }

  async reapDead (nowMs: number, limit: number): Promise<Transition[]> {
    const w = this.#world
    const out: Transition[] = []
    let budget = limit
    for (const [node, beat] of [...w.nodes]) {
      if (node === this.#opts.nodeId || beat >= nowMs - this.#opts.deadAfterMs) continue
      w.reaped.add(node)
      for (const [userId, rec] of usersOn(w, node)) {
        if (budget-- <= 0) return out
        rec.devices = rec.devices.filter(d => nodeOf(d.conn) !== node)
        const r = this.#recompute(userId, rec, beat, 0, nowMs)
        if (r.transition !== null) out.push(r.transition)
      }
      w.nodes.delete(node)
    }
    return out
  }

  async published (t: Transition): Promise<void> {
    if (this.#world.outbox.get(t.userId)?.transition.token === t.token) this.#world.outbox.delete(t.userId)
  }

  async unpublished (nowMs: number, limit: number): Promise<Transition[]> {
    const out: Transition[] = []
    for (const [, entry] of this.#world.outbox) {
      if (out.length >= limit) break
      if (entry.at >= nowMs - this.#opts.staleMs) continue
      entry.at = nowMs
      out.push(entry.transition)
    }
    return out
  }

  async states (userIds: readonly string[]): Promise<Map<string, Exclude<PresenceState, 'offline'>>> {
    const out = new Map<string, Exclude<PresenceState, 'offline'>>()
    for (const id of userIds) {
      const state = this.#world.users.get(id)?.state
      if (state != null) out.set(id, state)
    }
    return out
  }

  async connected (userIds: readonly string[]): Promise<Set<string>> {
    return new Set(userIds.filter(id => (this.#world.users.get(id)?.devices.length ?? 0) > 0))
  }

  async leave (): Promise<void> {
    const node = this.#opts.nodeId
    if (usersOn(this.#world, node).length > 0) return // left for the others to reap
    this.#world.nodes.delete(node)
  }

  async close (): Promise<void> {}

  #recompute (userId: string, rec: UserRecord, atMs: number, graceMs: number, nowMs: number): SyncResult {
    const w = this.#world
    if (rec.devices.length > 0) {
      w.pending.delete(userId)
      rec.goneAtMs = null
      const next = rec.devices.some(d => !d.away) ? 'online' : 'away'
      if (rec.state === next) return { transition: null, pendingUntilMs: null }
      rec.state = next
      return { transition: this.#changed({ userId, state: next }, nowMs), pendingUntilMs: null }
    }
    if (rec.state === null) {
      w.users.delete(userId)
      return { transition: null, pendingUntilMs: null }
    }
    const due = w.pending.get(userId)
    if (due !== undefined) return { transition: null, pendingUntilMs: due }
    if (graceMs <= 0) {
      w.users.delete(userId)
      return { transition: this.#changed({ userId, state: 'offline', lastSeenMs: atMs }, nowMs), pendingUntilMs: null }
    }
    rec.goneAtMs = atMs
    w.pending.set(userId, atMs + graceMs)
    return { transition: null, pendingUntilMs: atMs + graceMs }
  }

  #finish (userId: string, nowMs: number): Transition | null {
    const w = this.#world
    w.pending.delete(userId)
    const rec = w.users.get(userId)
    if (rec === undefined || rec.devices.length > 0) return null
    w.users.delete(userId)
    return this.#changed({ userId, state: 'offline', lastSeenMs: rec.goneAtMs ?? nowMs }, nowMs)
  }

  /** Into the outbox until confirmed published (the same contract as the Redis driver). */
  #changed (t: Transition, nowMs: number): Transition {
    const stamped = { ...t, token: String(++this.#world.seq) }
    this.#world.outbox.set(t.userId, { transition: stamped, at: nowMs })
    return stamped
  }
}
