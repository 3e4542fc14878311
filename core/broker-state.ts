// What the broker's session state (in memory, or in Redis for a cluster) can tell a
// watcher (plugins/metrics): read when asked, never pushed, so watching costs nothing
// between scrapes. broker/server.ts provides it.
import { serviceKey } from './services.js'

export interface BrokerStateView {
  /** whether every Redis connection of the node answers; null when the node runs without Redis */
  redisUp(): boolean | null
  /**
   * Persistent sessions whose device is away (they keep their subscriptions and offline
   * queue until they expire): this node's in memory; the whole cluster's with Redis.
   */
  sessionsAway(): Promise<number>
}

export const BROKER_STATE = serviceKey<BrokerStateView>('broker.state')
