// Helpers of the presence tests: a viewer that records every presence message it gets,
// the node's presence counters, and the REST calls.
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { PRESENCE_STATS, type PresenceStats } from '../../plugins/presence/index.js'
import type { PresenceEntry, PresenceMessage } from '../../schemas/index.js'
import { ensureUsers } from '../../core/users.js'
import { connectUser, token } from '../helpers/node.js'
import { userId } from '../helpers/fixtures.js'
import { suback } from '../helpers/access.js'
import { DEFAULT_WAIT_MS, withTimeout } from '../helpers/wait.js'

interface Teardownable { teardown(fn: () => unknown): void }

export interface Watcher {
  readonly client: MqttClient
  /** every presence message received, in order */
  readonly got: PresenceMessage[]
  /** the states received about `subject`, in order */
  states(subject: string): string[]
  /** Resolves with the next message about `subject` (in `state`, if given) not seen by an earlier call. */
  next(subject: string, state?: PresenceMessage['state'], timeoutMs?: number): Promise<PresenceMessage>
  /** Subscribes to presence/<subject>; resolves with the SUBACK code. */
  watch(subject: string): Promise<number>
}

export async function watcher (t: Teardownable, node: Threadline, viewer: string, device = 'viewer'): Promise<Watcher> {
  const client = await connectUser(t, node, viewer, device)
  const got: PresenceMessage[] = []
  const seen = new Map<string, number>()
  const waiters: Array<() => void> = []
  client.on('message', (topic, payload) => {
    if (!topic.startsWith('presence/')) return
    got.push(JSON.parse(payload.toString()) as PresenceMessage)
    for (const wake of waiters.splice(0)) wake()
  })
  const find = (subject: string, state?: string): PresenceMessage | undefined => {
    const from = seen.get(subject) ?? 0
    const mine = got.filter(m => m.user_id === subject)
    for (let i = from; i < mine.length; i++) {
      const m = mine[i] as PresenceMessage
      if (state === undefined || m.state === state) {
        seen.set(subject, i + 1)
        return m
      }
    }
    return undefined
  }
  return {
    client,
    got,
    states: (subject) => got.filter(m => m.user_id === subject).map(m => m.state),
    next: (subject, state, timeoutMs = DEFAULT_WAIT_MS) => withTimeout((async () => {
      for (;;) {
        const m = find(subject, state)
        if (m !== undefined) return m
        await new Promise<void>(resolve => waiters.push(resolve))
      }
    })(), `presence of ${subject}${state !== undefined ? ` (${state})` : ''} at ${viewer}`, timeoutMs),
    watch: async (subject) => (await suback(client, `presence/${subject}`, 0))[0] as number
  }
}

export const statsOf = (node: Threadline): PresenceStats => node.services.get(PRESENCE_STATS)()

export async function presenceOf (node: Threadline, viewer: string, ids: string[]): Promise<PresenceEntry[]> {
  const res = await node.app.inject({ method: 'GET', url: `/v1/presence?user_ids=${ids.join(',')}`, headers: { authorization: `Bearer ${token(node, viewer)}` } })
  if (res.statusCode !== 200) throw new Error(`GET /v1/presence answered ${res.statusCode}: ${res.body}`)
  return (res.json() as { presence: PresenceEntry[] }).presence
}

export async function setVisibility (node: Threadline, user: string, visibility: 'everyone' | 'contacts' | 'nobody'): Promise<void> {
  const res = await node.app.inject({
    method: 'PATCH', url: '/v1/me/settings', headers: { authorization: `Bearer ${token(node, user)}` }, payload: { presence_visibility: visibility }
  })
  if (res.statusCode !== 200) throw new Error(`PATCH /v1/me/settings answered ${res.statusCode}: ${res.body}`)
}

/** Publishes the device's state on user/<me>/presence (QoS 0). */
export async function say (client: MqttClient, user: string, state: 'active' | 'away'): Promise<void> {
  await client.publishAsync(`user/${user}/presence`, JSON.stringify({ state }), { qos: 0 })
}

/** users.last_seen as stored */
export async function storedLastSeen (node: Threadline, user: string): Promise<number | null> {
  const rows = await node.store.query<{ last_seen: Date | string | null }>('SELECT last_seen FROM users WHERE id = $1', [user])
  const v = rows[0]?.last_seen ?? null
  return v === null ? null : new Date(v).getTime()
}

/** Fresh user ids (fixtures.userId) with their rows: presence/<u> of a user with no row is refused like a hidden one. */
export async function newUsers<N extends string[]> (node: Threadline, ...names: N): Promise<{ [K in keyof N]: string }> {
  const ids = names.map(n => userId(n))
  await ensureUsers(node.store, ids)
  return ids as { [K in keyof N]: string }
}
