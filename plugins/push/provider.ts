// One push service behind the delivery queue: APNs (apns.ts) or FCM (fcm.ts). A provider
// sends one notification to one device and sorts the answer into what the queue does next.
import type { Platform } from '../../schemas/index.js'
import type { PushProviderName } from '../../core/push/service.js'
import type { Notification } from './notification.js'

export type Outcome =
  | { readonly kind: 'sent' }
  /** the token is no longer valid (the app was removed, the token rotated): delete it */
  | { readonly kind: 'gone', readonly reason: string }
  /** worth another try later: 429, 5xx, a timeout, a broken connection */
  | { readonly kind: 'retry', readonly reason: string }
  /** refused for good (a malformed request, wrong credentials): retrying would not help */
  | { readonly kind: 'failed', readonly reason: string }

export interface Provider {
  readonly name: PushProviderName
  /** Never rejects: every failure is an Outcome. */
  send(pushToken: string, platform: Platform, notification: Notification): Promise<Outcome>
  close(): Promise<void>
}

/** Which provider serves a platform: APNs for iOS, FCM for Android and the web (Firebase's web SDK). */
export const providerFor = (platform: Platform): PushProviderName => (platform === 'ios' ? 'apns' : 'fcm')
