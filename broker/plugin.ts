// The shape of a broker plugin (STYLE.md "A plugin is one folder with one entry"): one
// object that may bring hooks, lifecycle listeners, REST routes, config and services.
// broker/registry.ts composes every plugin's hooks into the single callbacks Aedes takes;
// broker/plugins.ts is the one list of plugins.
import type { Aedes, AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes'
import type { FastifyPluginAsync } from 'fastify'
import type { Config, EnvReader } from './config.js'
import type { Logger } from './logger.js'
import type { MembershipCache } from './membership.js'
import type { MembershipChange } from '../core/membership/notify.js'
import type { Store } from './store/index.js'
import type { Services } from '../core/services.js'
import type { CommittedEvent } from '../core/messages/send-service.js'
// request.identity on plugin routes comes from the sidecar's auth (a type-only import)
import type {} from '../sync-api/plugins/auth.js'

export type MaybePromise<T> = T | Promise<T>

/** Thrown by authenticate hooks: becomes the CONNACK return code. */
export class ConnectRefusal extends Error {
  constructor (readonly returnCode: 2 | 3 | 4 | 5, message: string) {
    super(message)
    this.name = 'ConnectRefusal'
  }
}

/**
 * What an authorizePublish hook returns when it has answered a packet itself (a send
 * refused as rate limited, a signal dropped): the packet is acknowledged as MQTT says
 * (PUBACK for QoS 1) and the hooks after it never see it. Order holds as for any packet:
 * it still waits for the client's earlier packets (broker/publish-order.ts).
 */
export const ANSWERED: unique symbol = Symbol('threadline.answered')
export type Answered = typeof ANSWERED

export interface ConnectInfo {
  clientId: string
  clean: boolean
  username: string | undefined
  password: Buffer | undefined
}

/**
 * Why a connected client went away:
 * - `disconnect`: it sent DISCONNECT;
 * - `keepalive`: nothing arrived within 1.5 × its keepalive;
 * - `takeover`: a new connection with its clientId took the session, on this node or another;
 * - `token_expired`: its token expired while it was connected;
 * - `shutdown`: this node is shutting down;
 * - `error`: anything else: the connection broke or closed without DISCONNECT, or a
 *   protocol error or a slow reader made the broker close it.
 */
export type GoneReason = 'disconnect' | 'keepalive' | 'takeover' | 'token_expired' | 'shutdown' | 'error'

export interface Hooks {
  /** Runs at CONNECT; throw ConnectRefusal to refuse. All hooks run in order. */
  authenticate?: (client: Client, info: ConnectInfo) => MaybePromise<void>
  /**
   * Runs for every client PUBLISH before it is acknowledged. Throw to close the
   * connection ([MQTT-3.3.5-2]). A client's packets to the chat namespaces are never
   * routed as they are (broker/patches/drop-raw-chat-packets.ts): plugins act on them
   * here and publish what subscribers should see themselves.
   * A hook may await I/O: the registry lets one client's packets into each hook in the
   * order they arrived, so no hook can reorder a sender's packets for the hooks after it.
   * Return (or resolve with) ANSWERED to acknowledge the packet without the hooks after it.
   */
  authorizePublish?: (client: Client, packet: PublishPacket) => MaybePromise<void | Answered>
  /** Return the subscription (possibly changed) or null to refuse it (SUBACK 0x80). */
  authorizeSubscribe?: (client: Client, sub: Subscription) => MaybePromise<Subscription | null>
  /** Synchronous, on every delivery: return null to withhold the packet from this client. */
  authorizeForward?: (client: Client, packet: AedesPublishPacket) => AedesPublishPacket | null

  // Lifecycle: told, never asked. A listener's failure (thrown or rejected) is logged
  // and costs nobody else anything; nothing waits for a returned promise.

  /** A client's CONNACK went out and its session (subscriptions, queued packets) is restored. */
  clientReady?: (client: Client) => MaybePromise<void>
  /** A client that was ready went away; once per clientReady. */
  clientGone?: (client: Client, reason: GoneReason) => MaybePromise<void>
  /**
   * One call per committed batch that stored new events (MQTT and HTTP sends alike),
   * after the commit and after the batch's acknowledgements: never on the PUBACK path.
   * Retries of stored sends are not new events and are left out.
   */
  eventsCommitted?: (events: readonly CommittedEvent[]) => MaybePromise<void>
  /** Members were added to or removed from a conversation (on every node, once per change). */
  membershipChanged?: (change: MembershipChange) => MaybePromise<void>
}

export interface PluginContext {
  readonly config: Config
  readonly log: Logger
  readonly store: Store
  readonly broker: Aedes
  readonly membership: MembershipCache
  /** Publishes a broker-originated packet (QoS 1, never retained unless asked). */
  publish(topic: string, payload: Buffer | string, opts?: { qos?: 0 | 1, retain?: boolean }): Promise<void>
  /** What plugins offer each other and the REST side, under keys declared in core/. */
  readonly services: Services
}

export type Teardown = () => Promise<void> | void

/**
 * One plugin. `O` is its own configuration: `config` parses it from the environment
 * (with the readers every variable uses, so a bad value names its variable and stops
 * startup), and setup, hooks and routes get the parsed value. Method syntax keeps a
 * plugin with options assignable to the registry's list of plugins.
 */
export interface ThreadlinePlugin<O = undefined> {
  readonly name: string
  readonly dependencies?: readonly string[]
  /** Parses this plugin's variables (THREADLINE_<PLUGIN>_…); called by loadConfig. */
  config?(env: EnvReader): O
  /** Starts what the plugin needs; returns its teardown, run in reverse order at shutdown. */
  setup?(ctx: PluginContext, options: O): Promise<Teardown | void>
  /** Called after setup; the hooks it returns are composed with the other plugins'. */
  hooks?(ctx: PluginContext, options: O): Hooks
  /** REST routes of this plugin, mounted under /v1 behind the bearer-token check. */
  routes?(ctx: PluginContext, options: O): FastifyPluginAsync
  /**
   * The sidecar as a whole: registered without encapsulation before any route, so the
   * hooks it adds (onRequest, preHandler, onSend) see every request, /v1 and the rest, and
   * the routes it adds sit outside /v1 without the bearer-token check (/metrics). A
   * preHandler runs after /v1's token check, so it sees `request.identity` there.
   */
  http?(ctx: PluginContext, options: O): FastifyPluginAsync
}

/** Types a plugin object, inferring its options from `config`. */
export function definePlugin<O = undefined> (plugin: ThreadlinePlugin<O>): ThreadlinePlugin<O> {
  return plugin
}
