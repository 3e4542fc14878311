// Who is connected (DESIGN.md §3 presence, §4 "Push only when nobody is there"). The
// presence plugin (plugins/presence) provides this service; push asks it whether a user
// has any device connected anywhere, and a long-poll queue registers here as a device
// exactly as an MQTT connection does, so "online" means the same thing for both.
import { serviceKey } from '../services.js'
import type { PresenceEntry } from '../../schemas/index.js'

/** What `presence/<u>` says (DESIGN.md §3). */
export type PresenceState = 'online' | 'away' | 'offline'

/** What a device says on `user/<me>/presence`: app in the foreground or not. */
export type DeviceState = 'active' | 'away'

/** One connected device of a user on this node, as the presence service tracks it. */
export interface PresenceDevice {
  /** Something came from the device (a publish, a subscribe, a poll): it is not idle. */
  heard(): void
  /** The device said it is in the foreground (`active`) or the background (`away`). */
  setState(state: DeviceState): void
  /** The device went away. Idempotent; a reconnect within the grace period is no offline/online pair. */
  end(): void
}

export interface PresenceService {
  /**
   * Whether any device of `userId` is connected, on any node. Answered from this node's
   * memory when one is here, else with one bounded Redis call (cluster) or at once
   * (single node). When Redis does not answer, only this node's devices count.
   */
  isConnected(userId: string): Promise<boolean>
  /** Of `userIds`, those with a device connected anywhere: one round trip for all. */
  connected(userIds: readonly string[]): Promise<Set<string>>
  /**
   * Registers a device of `userId` connected to this node by other means than MQTT (a
   * long-poll queue): it counts exactly like an MQTT connection until `end()`. Call
   * `heard()` on each poll, or it turns away after the idle time like a silent device.
   */
  attach(userId: string): PresenceDevice
  /** What GET /v1/presence answers `viewer` about `userIds` (privacy applied; `unknown` when hidden). */
  view(viewer: string, userIds: readonly string[]): Promise<PresenceEntry[]>
}

export const PRESENCE_SERVICE = serviceKey<PresenceService>('presence')
