// This node's side of presence: its connected devices (MQTT connections, and whatever
// else registers through the presence service), whether each is away, and keeping the
// backend (backend.ts) told. A device is away when it said so on `user/<me>/presence` or
// nothing was heard from it for `idleMs`. Arrivals and departures reach the backend at
// once; changes of a device's state at most once per `stateSyncMs` per user, so a client
// flipping its state in a loop costs Redis and the user's viewers one update per interval.
// Only one sync per user is in flight: what changes meanwhile goes in the next one, which
// always carries the whole current view, so a failed or late sync is repaired by the next.
import type { DeviceState, PresenceDevice } from '../../core/presence/service.js'
import { Deadlines } from '../../broker/deadlines.js'
import type { Logger } from '../../broker/logger.js'
import type { DeviceView, PresenceBackend, Transition } from './backend.js'

export interface TrackerOptions {
  readonly nodeId: string
  /** a device nothing was heard from for this long counts as away */
  readonly idleMs: number
  /** heartbeat, dead-node and grace sweeps */
  readonly heartbeatMs: number
  /** least time between two syncs of one user that only change device states */
  readonly stateSyncMs: number
}

/** users reaped or settled per sweep: a dead node with many users is worked through over several */
const SWEEP_BATCH = 1000

/** how late an idle device may turn away: a tenth of the idle time, at most a second */
const idleResolutionMs = (idleMs: number): number => Math.max(1, Math.min(1000, Math.floor(idleMs / 10)))

interface UserEntry {
  readonly userId: string
  /** this node's devices of the user, a list through Device.next (most users have one: no Set for it) */
  first: Device | null
  count: number
  /** when the last of this node's devices of the user went */
  goneAtMs: number
  dirty: boolean
  /** an arrival or departure waits: sync without waiting out stateSyncMs */
  urgent: boolean
  syncing: boolean
  /** the last sync failed: retried at the next heartbeat */
  failed: boolean
  lastSyncAt: number
  timer: NodeJS.Timeout | null
}

/** What a tracker's devices share (one per tracker, not a closure per device). */
interface DeviceHub {
  /** `<nodeId>/`: a device's conn is this and its number */
  readonly connPrefix: string
  readonly idleMs: number
  /** devices not idle, due when their idle time may have run out */
  readonly idle: Deadlines<Device>
  changed(entry: UserEntry, urgent: boolean): void
}

/** Device.slot of a device nothing was heard from for idleMs */
const IDLE = -1
/** Device.slot of a device that went */
const ENDED = -2

/**
 * One connected device. A class, not a closure per method: an idle session keeps one of
 * these, and "heard" is a field stamp on every PUBLISH, looked at only when the device's
 * idle slot comes up (Deadlines: one timer for all of them).
 */
class Device implements PresenceDevice, DeviceView {
  said: DeviceState = 'active'
  /**
   * Whether it was away at the last sync: the backend is handed the devices themselves as
   * their views (DeviceView), and this changes only when a sync takes a new view.
   */
  away = false
  lastHeard = Date.now()
  /** its slot in hub.idle while it waits there; else IDLE or ENDED (one field for the three states) */
  slot: number
  next: Device | null = null

  constructor (readonly hub: DeviceHub, readonly entry: UserEntry, readonly no: number) {
    this.slot = hub.idle.add(this, this.lastHeard + hub.idleMs)
  }

  /** `<nodeId>/<n>`, made when a sync asks (kept, it would be ~100 B of strings per device) */
  get conn (): string { return this.hub.connPrefix + String(this.no) }

  get awayNow (): boolean { return this.said === 'away' || this.slot === IDLE }

  heard (): void {
    this.lastHeard = Date.now()
    if (this.slot !== IDLE) return // waiting in hub.idle already, or ended
    this.slot = this.hub.idle.add(this, this.lastHeard + this.hub.idleMs)
    if (this.said === 'active') this.hub.changed(this.entry, false)
  }

  setState (state: DeviceState): void {
    this.heard()
    if (state === this.said || this.slot === ENDED) return
    this.said = state
    if (this.slot !== IDLE) this.hub.changed(this.entry, false)
  }

  end (): void {
    if (this.slot === ENDED) return
    if (this.slot !== IDLE) this.hub.idle.delete(this, this.slot)
    this.slot = ENDED
    const entry = this.entry
    if (entry.first === this) entry.first = this.next
    else for (let d = entry.first; d !== null; d = d.next) if (d.next === this) { d.next = this.next; break }
    this.next = null
    if (--entry.count === 0) entry.goneAtMs = Date.now()
    this.hub.changed(entry, true)
  }

  /** Its idle slot came up: idle now, or due again `idleMs` after it was last heard. */
  checkIdle (nowMs: number): void {
    const quiet = nowMs - this.lastHeard
    if (quiet < this.hub.idleMs) {
      this.slot = this.hub.idle.add(this, this.lastHeard + this.hub.idleMs)
      return
    }
    this.slot = IDLE
    if (this.said === 'active') this.hub.changed(this.entry, false)
  }
}

export interface TrackerStats {
  /** users with an entry here (a device, or a sync not done yet) */
  readonly users: number
  readonly devices: number
  /** users in their grace period with a timer on this node */
  readonly graceTimers: number
  /** users whose last sync failed, waiting for the next heartbeat */
  readonly failed: number
}

export class PresenceTracker {
  readonly #backend: PresenceBackend
  readonly #opts: TrackerOptions
  readonly #publish: (t: Transition) => Promise<boolean>
  readonly #log: Logger
  readonly #users = new Map<string, UserEntry>()
  readonly #graceTimers = new Map<string, NodeJS.Timeout>()
  readonly #inflight = new Set<Promise<void>>()
  readonly #hub: DeviceHub
  #conns = 0
  #tick: NodeJS.Timeout | null = null
  #stopped = false
  /** what last failed in the sweep, so a Redis outage is logged when it starts and ends, not every beat */
  #sweepFailing = false

  /** `publish`: resolves true once `t` went out, false when it was not published (a node shutting down) */
  constructor (backend: PresenceBackend, opts: TrackerOptions, publish: (t: Transition) => Promise<boolean>, log: Logger) {
    this.#backend = backend
    this.#opts = opts
    this.#publish = publish
    this.#log = log
    this.#hub = {
      connPrefix: `${opts.nodeId}/`,
      idleMs: opts.idleMs,
      idle: new Deadlines<Device>(idleResolutionMs(opts.idleMs), (device, nowMs) => device.checkIdle(nowMs)),
      changed: (entry, urgent) => this.#changed(entry, urgent)
    }
  }

  start (): void {
    this.#schedule()
  }

  /** A device of `userId` connected to this node. */
  attach (userId: string): PresenceDevice {
    let entry = this.#users.get(userId)
    if (entry === undefined) {
      entry = { userId, first: null, count: 0, goneAtMs: 0, dirty: false, urgent: false, syncing: false, failed: false, lastSyncAt: 0, timer: null }
      this.#users.set(userId, entry)
    }
    const device = new Device(this.#hub, entry, ++this.#conns)
    device.next = entry.first
    entry.first = device
    entry.count++
    this.#changed(entry, true)
    return device
  }

  async isConnected (userId: string): Promise<boolean> {
    return (await this.connected([userId])).has(userId)
  }

  async connected (userIds: readonly string[]): Promise<Set<string>> {
    const here = new Set(userIds.filter(id => (this.#users.get(id)?.count ?? 0) > 0))
    const elsewhere = userIds.filter(id => !here.has(id))
    if (elsewhere.length === 0) return here
    try {
      for (const id of await this.#backend.connected(elsewhere)) here.add(id)
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'presence: connected devices unknown beyond this node')
    }
    return here
  }

  /** Each user's state (absent: offline); rejects when the backend does not answer. */
  states (userIds: readonly string[]): ReturnType<PresenceBackend['states']> {
    return this.#backend.states(userIds)
  }

  stats (): TrackerStats {
    let devices = 0
    let failed = 0
    for (const entry of this.#users.values()) {
      devices += entry.count
      if (entry.failed) failed++
    }
    return { users: this.#users.size, devices, graceTimers: this.#graceTimers.size, failed }
  }

  /**
   * Syncs what is left to sync (bounded by `waitMs`), then, when `settleAll` (no other
   * node will), ends every grace period at once; last of all the node leaves.
   */
  async stop (waitMs: number, settleAll: boolean): Promise<void> {
    this.#stopped = true
    if (this.#tick !== null) clearTimeout(this.#tick)
    this.#hub.idle.clear()
    for (const entry of this.#users.values()) {
      if (entry.dirty || entry.timer !== null) this.#changed(entry, true)
    }
    const deadline = Date.now() + waitMs
    while (this.#inflight.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([...this.#inflight, new Promise<void>(resolve => { timer = setTimeout(resolve, deadline - Date.now()) })])
      clearTimeout(timer)
    }
    for (const timer of this.#graceTimers.values()) clearTimeout(timer)
    this.#graceTimers.clear()
    try {
      if (settleAll) for (const t of await this.#backend.settleDue(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) this.#emit(t)
      await this.#backend.leave()
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'presence: this node did not leave cleanly; the others take it for dead after its heartbeat runs out')
    }
  }

  /** Publishes a transition and confirms it; one that fails either way is handed out again later (backend.unpublished). */
  #emit (t: Transition): void {
    this.#publish(t).then(async (done) => { if (done) await this.#backend.published(t) })
      .catch((err: unknown) => this.#log.warn({ err: (err as Error).message, userId: t.userId, state: t.state }, 'presence: change not confirmed published; published again later'))
  }

  #changed (entry: UserEntry, urgent: boolean): void {
    entry.dirty = true
    if (urgent) entry.urgent = true
    this.#trySync(entry)
  }

  #trySync (entry: UserEntry): void {
    if (entry.syncing || !entry.dirty) return
    const wait = entry.urgent || this.#stopped ? 0 : entry.lastSyncAt + this.#opts.stateSyncMs - Date.now()
    if (wait > 0) {
      entry.timer ??= setTimeout(() => { entry.timer = null; this.#trySync(entry) }, wait).unref()
      return
    }
    if (entry.timer !== null) {
      clearTimeout(entry.timer)
      entry.timer = null
    }
    this.#sync(entry)
  }

  #sync (entry: UserEntry): void {
    entry.dirty = false
    entry.urgent = false
    entry.syncing = true
    const now = Date.now()
    entry.lastSyncAt = now
    // sized up front: the memory backend keeps this array for as long as the view stands,
    // and one grown by push() has room for 17
    const view = new Array<DeviceView>(entry.count)
    let i = 0
    for (let d = entry.first; d !== null; d = d.next) {
      d.away = d.awayNow
      view[i++] = d
    }
    const at = view.length > 0 ? now : entry.goneAtMs
    const done = this.#backend.sync(entry.userId, view, at).then((r) => {
      entry.failed = false
      if (r.transition !== null) this.#emit(r.transition)
      if (r.pendingUntilMs !== null) this.#armGrace(entry.userId, r.pendingUntilMs)
      else if (view.length > 0) this.#clearGrace(entry.userId)
    }, (err: unknown) => {
      if (!entry.failed) this.#log.warn({ err: (err as Error).message, userId: entry.userId }, 'presence: sync failed; retried at the next heartbeat')
      entry.failed = true
      entry.dirty = true
    }).finally(() => {
      entry.syncing = false
      this.#inflight.delete(done)
      if (!entry.failed) this.#trySync(entry)
      this.#forgetIfIdle(entry)
    })
    this.#inflight.add(done)
  }

  #forgetIfIdle (entry: UserEntry): void {
    if (entry.count === 0 && !entry.dirty && !entry.syncing && entry.timer === null && this.#users.get(entry.userId) === entry) {
      this.#users.delete(entry.userId)
    }
  }

  #armGrace (userId: string, untilMs: number): void {
    this.#clearGrace(userId)
    if (this.#stopped) return
    const timer = setTimeout(() => {
      this.#graceTimers.delete(userId)
      this.#backend.settle(userId, Date.now()).then((t) => { if (t !== null) this.#emit(t) },
        (err: unknown) => this.#log.warn({ err: (err as Error).message, userId }, 'presence: grace period not ended here; the next sweep ends it'))
    }, Math.max(0, untilMs - Date.now()) + 1)
    timer.unref()
    this.#graceTimers.set(userId, timer)
  }

  #clearGrace (userId: string): void {
    const timer = this.#graceTimers.get(userId)
    if (timer === undefined) return
    clearTimeout(timer)
    this.#graceTimers.delete(userId)
  }

  #schedule (): void {
    if (this.#stopped) return
    this.#tick = setTimeout(() => { void this.#sweep().finally(() => this.#schedule()) }, this.#opts.heartbeatMs)
    this.#tick.unref()
  }

  /** The sure path: heartbeat, re-sync after a failure or after being taken for dead, dead nodes, due grace periods. */
  async #sweep (): Promise<void> {
    const now = Date.now()
    try {
      if (await this.#backend.heartbeat(now)) {
        this.#log.warn('presence: the other nodes took this node for dead (a stall?): registering its devices again')
        for (const entry of this.#users.values()) this.#changed(entry, true)
      }
      for (const entry of this.#users.values()) {
        if (!entry.failed) continue
        entry.failed = false
        this.#changed(entry, true)
      }
      for (const t of await this.#backend.reapDead(now, SWEEP_BATCH)) this.#emit(t)
      for (const t of await this.#backend.settleDue(now, SWEEP_BATCH)) this.#emit(t)
      for (const t of await this.#backend.unpublished(now, SWEEP_BATCH)) this.#emit(t)
      if (this.#sweepFailing) this.#log.info('presence: the sweep works again')
      this.#sweepFailing = false
    } catch (err) {
      if (!this.#sweepFailing) this.#log.warn({ err: (err as Error).message }, 'presence: heartbeat or sweep failed; retrying every heartbeat')
      this.#sweepFailing = true
    }
  }
}
