// What the push plugin (plugins/push) tells the rest of the node: its counters, per
// provider, for the metrics endpoint; and how much waits in its bounded queues.
import { serviceKey } from '../services.js'

export type PushProviderName = 'apns' | 'fcm'

export interface PushCounters {
  /** notifications the provider accepted */
  sent: number
  /** messages folded into another message's notification instead of getting their own */
  coalesced: number
  /** notifications given up: not accepted after the retries, refused, or dropped because the queue was full */
  failed: number
  /** attempts repeated after a 429, a 5xx, a timeout or a broken connection */
  retried: number
  /** device tokens deleted because the provider said they are gone */
  pruned: number
}

export interface PushService {
  /** the providers configured on this node */
  readonly providers: readonly PushProviderName[]
  /** a copy of the counters, per configured provider */
  counters(): Record<PushProviderName, PushCounters>
  /** notifications waiting, in flight or waiting to be retried, per provider (each queue is bounded) */
  queued(): Record<PushProviderName, number>
}

export const PUSH_SERVICE = serviceKey<PushService>('push')
