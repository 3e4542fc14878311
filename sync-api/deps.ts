// What the sidecar needs from the broker process. broker/server.ts builds it; tests
// build it the same way (no mocks of our own parts).
import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../broker/config.js'
import type { Logger } from '../broker/logger.js'
import type { MembershipCache } from '../broker/membership.js'
import type { Store } from '../broker/store/index.js'
import type { TokenService } from '../core/tokens.js'
import type { SendService } from '../core/messages/send-service.js'
import type { WebBundle } from './web/bundle.js'

export interface SyncApiDeps {
  readonly config: Config
  readonly log: Logger
  readonly store: Store
  readonly tokens: TokenService
  readonly sends: SendService
  readonly membership: MembershipCache
  /** Publishes a broker-originated QoS 1 packet (membership envelopes to inboxes, say). */
  publish(topic: string, payload: Buffer | string): Promise<void>
  /** REST routes the broker plugins bring, mounted under /v1 behind the bearer-token check */
  readonly routes?: readonly FastifyPluginAsync[]
  /** the plugins' sidecar-wide hooks and root routes, registered unencapsulated before every route */
  readonly http?: readonly FastifyPluginAsync[]
  /** Readiness of parts besides the store (Redis), for /readyz. */
  readonly checks: ReadonlyArray<{ name: string, check: () => Promise<void> }>
  /** the web page at `/`; built into dist/web when first asked for unless given */
  readonly web?: WebBundle
}
