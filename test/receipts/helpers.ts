// Shared pieces of the receipts tests: conversations and events written straight into the
// store (as the REST routes and the send path would), receipts over MQTT, and what the
// store and the receipts service say.
import { randomUUID } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import type { Queryable } from '../../core/store.js'
import { RECEIPTS_SERVICE, type ReceiptStats } from '../../core/receipts/service.js'
import { DEFAULT_WAIT_MS, waitFor, withTimeout } from '../helpers/wait.js'

export interface ReceiptsEnvelope {
  t: 'receipts'
  conv_id: string
  markers: Array<{ user_id: string, delivered_seq: number, read_seq: number }>
}

export interface StoredMarkers { delivered_seq: number, read_seq: number }

/** A conversation with these members and events (`sender` and `type`, text by default), in SQL. */
export async function seedConversation (q: Queryable, members: readonly string[], events: ReadonlyArray<{ sender: string, type?: 'text' | 'reaction' | 'edit' | 'delete', target?: number }> = []): Promise<string> {
  const id = randomUUID()
  await q.query('INSERT INTO users (id, display_name) SELECT u, u FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING', [members])
  await q.query(
    'INSERT INTO conversations (id, type, title, created_by, direct_key, last_seq) VALUES ($1, $2, $3, $4, $5, $6)',
    [id, members.length === 2 ? 'direct' : 'group', members.length === 2 ? null : 'receipts', members[0], members.length === 2 ? [...members].sort().join('|') : null, events.length])
  await q.query('INSERT INTO members (conv_id, user_id) SELECT $1, u FROM unnest($2::text[]) AS u', [id, members])
  for (const [i, e] of events.entries()) {
    const type = e.type ?? 'text'
    const body = type === 'text' || type === 'edit' ? { text: `m${i + 1}` } : type === 'reaction' ? { emoji: '👍' } : {}
    await q.query('INSERT INTO events (conv_id, seq, sender_id, client_msg_id, type, body, target_seq) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [id, i + 1, e.sender, `seed-${i + 1}`, type, JSON.stringify(body), e.target ?? null])
  }
  return id
}

export async function storedMarkers (q: Queryable, convId: string, userId: string): Promise<StoredMarkers | undefined> {
  const rows = await q.query<StoredMarkers>('SELECT delivered_seq, read_seq FROM members WHERE conv_id = $1 AND user_id = $2', [convId, userId])
  return rows[0]
}

/** Publishes a receipt on conv/<c>/read; QoS 1 resolves at PUBACK. */
export async function publishReceipt (client: MqttClient, convId: string, status: 'delivered' | 'read', seq: number, qos: 0 | 1 = 1): Promise<void> {
  await client.publishAsync(`conv/${convId}/read`, JSON.stringify({ status, seq }), { qos })
}

export const receiptStats = (node: Threadline): ReceiptStats => node.services.get(RECEIPTS_SERVICE).stats

/** Waits until the node's receipts have all been written (nothing pending, nothing in flight). */
export async function receiptsSettled (node: Threadline, ms = DEFAULT_WAIT_MS): Promise<void> {
  await waitFor(() => {
    const s = receiptStats(node)
    return s.pending === 0 && s.writing === 0
  }, 'the receipts to be written', ms)
}

/** Every `receipts` envelope a client gets on `topic`, as they come. */
export function receiptsOn (client: MqttClient, topic: string): ReceiptsEnvelope[] {
  const got: ReceiptsEnvelope[] = []
  client.on('message', (t, payload) => {
    if (t !== topic) return
    const msg = JSON.parse(payload.toString()) as { t?: string }
    if (msg.t === 'receipts') got.push(msg as ReceiptsEnvelope)
  })
  return got
}

/** The newest marker of `userId` among received summaries (what a client shows, applying max). */
export function latestMarker (summaries: readonly ReceiptsEnvelope[], userId: string): StoredMarkers | undefined {
  let best: StoredMarkers | undefined
  for (const s of summaries) {
    for (const m of s.markers) {
      if (m.user_id !== userId) continue
      best = { delivered_seq: Math.max(best?.delivered_seq ?? 0, m.delivered_seq), read_seq: Math.max(best?.read_seq ?? 0, m.read_seq) }
    }
  }
  return best
}

/**
 * Resolves once everything published so far to `userId`'s inbox has reached `client`:
 * the broker's deliveries to one client keep their order, so a marker published now
 * arrives after them. For asserting what did not arrive.
 */
export async function inboxDrained (node: Threadline, client: MqttClient, userId: string): Promise<void> {
  const topic = `user/${userId}/inbox`
  const marker = `drained-${randomUUID()}`
  const arrived = new Promise<void>((resolve) => {
    const on = (got: string, payload: Buffer): void => {
      if (got !== topic || !payload.toString().includes(marker)) return
      client.off('message', on)
      resolve()
    }
    client.on('message', on)
  })
  await new Promise<void>((resolve, reject) => node.broker.publish({
    cmd: 'publish', topic, payload: Buffer.from(JSON.stringify({ t: 'test-marker', marker })), qos: 1, retain: false, dup: false
  }, (err) => (err ? reject(err) : resolve())))
  await withTimeout(arrived, `the marker on ${topic}`)
}

/** Each step where a marker went down, as `from → to`: what "never backwards" forbids. */
export function backwardSteps (seen: readonly StoredMarkers[]): string[] {
  const bad: string[] = []
  for (let i = 1; i < seen.length; i++) {
    const [a, b] = [seen[i - 1] as StoredMarkers, seen[i] as StoredMarkers]
    if (b.delivered_seq < a.delivered_seq || b.read_seq < a.read_seq) bad.push(`${JSON.stringify(a)} → ${JSON.stringify(b)}`)
  }
  return bad
}

/**
 * Every receipt for seqs 1..n, both statuses, three times, each copy up to `spread` seqs
 * out of place; a fixed seed, so a failure can be replayed.
 */
export function scrambledReceipts (n: number, spread: number, seed: number): Array<{ status: 'delivered' | 'read', seq: number }> {
  let s = seed
  const rand = (): number => { s = (s * 1103515245 + 12345) % 2 ** 31; return s / 2 ** 31 }
  const one = Array.from({ length: n }, (_, i) => [{ status: 'delivered' as const, seq: i + 1 }, { status: 'read' as const, seq: i + 1 }]).flat()
  return [...one, ...one, ...one].map(r => ({ r, key: r.seq + rand() * spread })).sort((a, b) => a.key - b.key).map(x => x.r)
}
