// From committed events to notifications (DESIGN.md §4 "Push only when nobody is there").
// Intake: each text message (replies included; reactions, edits and deletes don't push)
// counts for every member but its sender who has no device connected anywhere. When the
// window closes its users are asked again, so a user who came online meanwhile gets
// nothing; muted conversations drop out; what is left becomes one notification per user,
// handed to the queue of each of the user's devices' providers.
import type { Logger } from '../../broker/logger.js'
import type { Store } from '../../core/store.js'
import type { CommittedEvent } from '../../core/messages/send-service.js'
import type { PresenceService } from '../../core/presence/service.js'
import type { PushProviderName } from '../../core/push/service.js'
import { totalUnread } from '../../core/conversations/unread.js'
import { devicesOf, type DeviceRow } from './devices.js'
import { compose, type ConversationInfo, type Tally } from './notification.js'
import { providerFor } from './provider.js'
import type { DeliveryQueue } from './queue.js'
import type { Gathered, PushWindow } from './window.js'

export interface DispatchDeps {
  readonly store: Store
  readonly log: Logger
  /** undefined until a plugin provides it: then nobody counts as connected */
  readonly presence: () => PresenceService | undefined
  readonly queues: ReadonlyMap<PushProviderName, DeliveryQueue>
}

/** Of `userIds`, those with a device connected anywhere; none when nobody can tell. */
async function connected (deps: DispatchDeps, userIds: readonly string[]): Promise<Set<string>> {
  const presence = deps.presence()
  if (presence === undefined || userIds.length === 0) return new Set()
  try {
    return await presence.connected(userIds)
  } catch (err) {
    // better a notification too many than a message nobody hears of
    deps.log.warn({ err }, 'presence unknown: pushing as if nobody were connected')
    return new Set()
  }
}

/** The eventsCommitted hook: the members to notify go into the window. */
export async function intake (deps: DispatchDeps, window: PushWindow, events: readonly CommittedEvent[]): Promise<void> {
  const texts = events.filter(e => e.envelope.type === 'text')
  if (texts.length === 0) return
  const recipients = new Set<string>()
  for (const e of texts) for (const m of e.members) if (m !== e.envelope.sender_id) recipients.add(m)
  const online = await connected(deps, [...recipients])
  for (const { envelope, members } of texts) {
    for (const userId of members) {
      if (userId === envelope.sender_id || online.has(userId)) continue
      window.add(userId, { convId: envelope.conv_id, seq: envelope.seq, senderId: envelope.sender_id, text: envelope.text ?? '' })
    }
  }
}

/** A window closed: one notification per user still away, to each of their devices. */
export async function dispatch (deps: DispatchDeps, gathered: Gathered): Promise<void> {
  const online = await connected(deps, [...gathered.keys()])
  const users = new Map([...gathered].filter(([userId]) => !online.has(userId)))
  if (users.size === 0) return
  await dropMuted(deps.store, users)
  const devices = (await devicesOf(deps.store, [...users.keys()])).filter(d => deps.queues.has(providerFor(d.platform)))
  if (devices.length === 0) return
  const byUser = new Map<string, DeviceRow[]>()
  for (const d of devices) byUser.set(d.user_id, [...(byUser.get(d.user_id) ?? []), d])
  const tallies = [...byUser.keys()].flatMap(u => [...(users.get(u)?.values() ?? [])])
  const [badges, names, conversations] = await Promise.all([
    totalUnread(deps.store, [...byUser.keys()]),
    displayNames(deps.store, [...new Set(tallies.map(t => t.lastSender))]),
    conversationInfo(deps.store, [...new Set(tallies.map(t => t.convId))])
  ])
  for (const [userId, userDevices] of byUser) {
    const notification = compose([...(users.get(userId)?.values() ?? [])], names, conversations, badges.get(userId) ?? 0)
    for (const device of userDevices) deps.queues.get(providerFor(device.platform))?.push(device, notification)
  }
}

/** Takes muted conversations (muted_until in the future) out, and users left with nothing. */
async function dropMuted (store: Store, users: Map<string, Map<string, Tally>>): Promise<void> {
  const convIds = [...new Set([...users.values()].flatMap(convs => [...convs.keys()]))]
  const muted = await store.query<{ user_id: string, conv_id: string }>(
    `SELECT user_id, conv_id::text AS conv_id FROM members
     WHERE user_id = ANY($1::text[]) AND conv_id = ANY($2::uuid[]) AND muted_until > now()`, [[...users.keys()], convIds])
  for (const { user_id: userId, conv_id: convId } of muted) {
    const convs = users.get(userId)
    convs?.delete(convId)
    if (convs?.size === 0) users.delete(userId)
  }
}

async function displayNames (store: Store, userIds: readonly string[]): Promise<Map<string, string>> {
  const rows = await store.query<{ id: string, display_name: string }>('SELECT id, display_name FROM users WHERE id = ANY($1::text[])', [userIds])
  return new Map(rows.map(r => [r.id, r.display_name]))
}

async function conversationInfo (store: Store, convIds: readonly string[]): Promise<Map<string, ConversationInfo>> {
  const rows = await store.query<{ id: string, type: ConversationInfo['type'], title: string | null }>(
    'SELECT id::text AS id, type, title FROM conversations WHERE id = ANY($1::uuid[])', [convIds])
  return new Map(rows.map(r => [r.id, { type: r.type, title: r.title }]))
}
