// The shape of a broker plugin (STYLE.md "A plugin is one folder with one entry").
// Hooks are async-or-sync functions; broker/registry.ts composes each kind into the
// single callback Aedes takes.
import type { Aedes, AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes'
import type { Config } from './config.js'
import type { Logger } from './logger.js'
import type { MembershipCache } from './membership.js'
import type { Store } from './store/index.js'

export type MaybePromise<T> = T | Promise<T>

/** Thrown by authenticate hooks: becomes the CONNACK return code. */
export class ConnectRefusal extends Error {
  constructor (readonly returnCode: 2 | 3 | 4 | 5, message: string) {
    super(message)
    this.name = 'ConnectRefusal'
  }
}

export interface ConnectInfo {
  clientId: string
  clean: boolean
  username: string | undefined
  password: Buffer | undefined
}

export interface Hooks {
  /** Runs at CONNECT; throw ConnectRefusal to refuse. All hooks run in order. */
  authenticate?: (client: Client, info: ConnectInfo) => MaybePromise<void>
  /**
   * Runs for every client PUBLISH before it is acknowledged. Throw to close the
   * connection ([MQTT-3.3.5-2]). A client's packets to the chat namespaces are never
   * routed as they are (broker/server.ts drops them after the acknowledgement): plugins
   * act on them here and publish what subscribers should see themselves.
   * Hooks that answer synchronously keep the packets' arrival order (see registry.ts).
   */
  authorizePublish?: (client: Client, packet: PublishPacket) => MaybePromise<void>
  /** Return the subscription (possibly changed) or null to refuse it (SUBACK 0x80). */
  authorizeSubscribe?: (client: Client, sub: Subscription) => MaybePromise<Subscription | null>
  /** Synchronous, on every delivery: return null to withhold the packet from this client. */
  authorizeForward?: (client: Client, packet: AedesPublishPacket) => AedesPublishPacket | null
}

export interface PluginContext {
  readonly config: Config
  readonly log: Logger
  readonly store: Store
  readonly broker: Aedes
  readonly membership: MembershipCache
  /** Publishes a broker-originated packet (QoS 1, never retained unless asked). */
  publish(topic: string, payload: Buffer | string, opts?: { qos?: 0 | 1, retain?: boolean }): Promise<void>
  /** Services a plugin offers others (e.g. messages → the send service for sync-api). */
  readonly services: Map<string, unknown>
}

export type Teardown = () => Promise<void> | void

export interface ThreadlinePlugin {
  readonly name: string
  readonly dependencies?: readonly string[]
  readonly hooks?: (ctx: PluginContext) => Hooks
  /** Starts what the plugin needs; returns its teardown, run in reverse order at shutdown. */
  readonly setup?: (ctx: PluginContext) => Promise<Teardown | void>
}
