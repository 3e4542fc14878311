// After a membership change is committed: every node's membership cache learns it (the
// ACL checks each delivery against it) and the people concerned get a `membership`
// envelope on their inbox (DESIGN.md §3). The change is already the record, and its row
// in the membership change log reaches every node even when the announcement does not,
// so a failure here is logged, not answered: devices catch up from the REST API.
import type { MembershipEnvelope } from '../../schemas/index.js'
import { inboxTopic } from '../topics.js'

/** A committed change as the membership caches of every node apply it. */
export interface MembershipChange {
  conv_id: string
  added: string[]
  removed: string[]
  /** its row in the change log (core/membership/change-log.ts); absent for a change not logged */
  id?: number
}

/**
 * What the domain needs of the broker's membership cache (broker/membership.ts): apply
 * a committed change on this node and announce it to the others. Rejects when the
 * announcement could not be published.
 */
export interface MembershipAnnouncer {
  announce(change: MembershipChange): Promise<void>
}

/** Where announcement failures go: pino's and Fastify's loggers both fit. */
export interface ErrorLog {
  error(obj: object, msg: string): void
}

export interface NotifyDeps {
  readonly membership: MembershipAnnouncer
  /** Publishes a broker-originated QoS 1 packet. */
  publish(topic: string, payload: Buffer | string): Promise<void>
}

export interface MembershipNotice {
  convId: string
  change: MembershipEnvelope['change']
  userIds: readonly string[]
  /** the change's row in the membership change log (logMembershipChange in the same transaction) */
  logId: number | null
  /** whose inbox gets the envelope */
  recipients: readonly string[]
}

export async function notifyMembership (deps: NotifyDeps, log: ErrorLog, n: MembershipNotice): Promise<void> {
  if (n.userIds.length === 0) return
  try {
    await deps.membership.announce({
      conv_id: n.convId,
      added: n.change === 'added' ? [...n.userIds] : [],
      removed: n.change === 'removed' ? [...n.userIds] : [],
      ...(n.logId !== null ? { id: n.logId } : {})
    })
  } catch (err) {
    log.error({ err, conv_id: n.convId }, 'membership change not announced: other nodes learn it from the change log')
  }
  const envelope: MembershipEnvelope = { t: 'membership', conv_id: n.convId, change: n.change, user_ids: [...n.userIds] }
  const payload = JSON.stringify(envelope)
  const results = await Promise.allSettled([...new Set(n.recipients)].map(u => deps.publish(inboxTopic(u), payload)))
  for (const r of results) {
    if (r.status === 'rejected') log.error({ err: r.reason, conv_id: n.convId }, 'membership envelope not published')
  }
}
