// Who talks to whom: N 1:1 pairs or one big group, the same shape for both targets. For
// Threadline the conversations are written straight into PostgreSQL before load, as
// test/helpers/fixtures.ts does (the membership cache loads them when users connect).
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import type { ClientSpec, ReceiptPattern, SenderSpec, SignalsSpec, Target } from './protocol.js'

export interface Conversation {
  id: string
  members: string[]
}

export interface Scenario {
  name: 'pairs' | 'group' | 'longpoll'
  convs: Conversation[]
  /** every sender; index = position */
  senders: SenderSpec[]
  /** user → connection spec, and which worker opens it */
  clients: Array<ClientSpec & { worker: number }>
  /** deliveries of one send to members other than its sender */
  recipientsPerSend: number
  /** the signals scenario: receipts, typing, a watcher of conv/<c>/receipts */
  signals?: SignalsSpec
}

export function userSenderMap (s: Scenario): Record<string, string> {
  return Object.fromEntries(s.senders.map(x => [String(x.index), x.user]))
}

/**
 * Threadline: each member subscribes to its own `user/<me>/inbox`; a send goes to
 * `conv/<c>/send` and the broker fans the stored event out to every member's inbox
 * (the sender's too) and to `conv/<c>/events`.
 * Raw Aedes: every member subscribes to `conv/<c>/events` and the sender publishes
 * there. That is the closest equivalent: one QoS 1 PUBLISH in, one PUBACK, and one QoS 1
 * delivery per member, the sender's echo included.
 */
function topics (target: Target, conv: string, user: string): { subscribe: string[], send: string } {
  return target === 'threadline'
    ? { subscribe: [`user/${user}/inbox`], send: `conv/${conv}/send` }
    : { subscribe: [`conv/${conv}/events`], send: `conv/${conv}/events` }
}

export function pairsScenario (target: Target, pairs: number, workers: number, token: (user: string) => string): Scenario {
  const convs: Conversation[] = []
  const senders: SenderSpec[] = []
  const clients: Scenario['clients'] = []
  for (let i = 0; i < pairs; i++) {
    const conv = randomUUID()
    const a = `pa${i}`
    const b = `pb${i}`
    convs.push({ id: conv, members: [a, b] })
    const t = topics(target, conv, a)
    senders.push({ index: i, user: a, convId: conv, topic: t.send })
    // a pair lives in one worker: its sender and recipient share a process
    for (const user of [a, b]) clients.push({ user, token: token(user), subscribe: topics(target, conv, user).subscribe, expectFrom: [i], worker: i % workers })
  }
  return { name: 'pairs', convs, senders, clients, recipientsPerSend: 1 }
}

export function groupScenario (target: Target, size: number, senderCount: number, workers: number, token: (user: string) => string): Scenario {
  const conv = randomUUID()
  const members = Array.from({ length: size }, (_, i) => `gm${i}`)
  const stride = Math.max(1, Math.floor(size / senderCount))
  const senders: SenderSpec[] = Array.from({ length: senderCount }, (_, i) => {
    const user = members[i * stride] as string
    return { index: i, user, convId: conv, topic: topics(target, conv, user).send }
  })
  const all = senders.map(s => s.index)
  const clients = members.map((user, i) => ({ user, token: token(user), subscribe: topics(target, conv, user).subscribe, expectFrom: all, worker: i % workers }))
  return { name: 'group', convs: [{ id: conv, members }], senders, clients, recipientsPerSend: size - 1 }
}

/**
 * The group of groupScenario, every member answering each message with receipts
 * (`receipts`: delivered + read, or read alone), `typists` members typing every 3 s (a client refreshes its indicator well
 * within the 5 s after which others drop it), and the first member that does not send
 * also watching conv/<c>/receipts. On raw Aedes the same publishes go to the same topics,
 * where nobody subscribes to them: what the packets alone cost a plain broker.
 */
export function signalsScenario (target: Target, size: number, senderCount: number, typists: number, receipts: ReceiptPattern, workers: number, token: (user: string) => string): Scenario {
  const group = groupScenario(target, size, senderCount, workers, token)
  const conv = group.convs[0] as Conversation
  const senders = new Set(group.senders.map(s => s.user))
  const quiet = conv.members.filter(u => !senders.has(u))
  return {
    ...group,
    signals: {
      receipts,
      typists: quiet.slice(-typists),
      typingEveryMs: 3000,
      watcher: quiet[0] ?? null,
      convId: conv.id
    }
  }
}

/** --scenario longpoll: how the third member of each group receives */
export type LongPollVariant = 'longpoll' | 'mqtt' | 'offline'
export const LONGPOLL_VARIANTS: readonly LongPollVariant[] = ['longpoll', 'mqtt', 'offline']
/** groups that share one sender (its inbox gets every one's echo) */
export const CONVS_PER_SENDER = 10

/**
 * `count` three-member groups: a sender (one per CONVS_PER_SENDER groups), an MQTT
 * recipient, and a third member who long-polls (`longpoll`: its client lives in the
 * long-poll worker, index `workers`), holds an MQTT connection like the recipient
 * (`mqtt`), or has no device at all (`offline`: the baseline that prices one delivery
 * either way). Users are named per variant, so the variants' groups can live side by side.
 */
export function longPollScenario (variant: LongPollVariant, count: number, workers: number, token: (user: string) => string): Scenario {
  const tag = { longpoll: 'lp', mqtt: 'mq', offline: 'of' }[variant]
  const convs: Conversation[] = []
  const senders: SenderSpec[] = []
  const clients: Scenario['clients'] = []
  const inbox = (user: string): string[] => [`user/${user}/inbox`]
  for (let i = 0; i < count; i++) {
    const conv = randomUUID()
    const j = Math.floor(i / CONVS_PER_SENDER)
    const [sender, recipient, third] = [`${tag}s${j}`, `${tag}r${i}`, `${tag}x${i}`]
    convs.push({ id: conv, members: [sender, recipient, third] })
    senders.push({ index: i, user: sender, convId: conv, topic: `conv/${conv}/send` })
    // a sender and its recipients share a worker, as a pair does
    const worker = j % workers
    const own = Array.from({ length: Math.min(CONVS_PER_SENDER, count - j * CONVS_PER_SENDER) }, (_, k) => j * CONVS_PER_SENDER + k)
    if (i % CONVS_PER_SENDER === 0) clients.push({ user: sender, token: token(sender), subscribe: inbox(sender), expectFrom: own, worker })
    clients.push({ user: recipient, token: token(recipient), subscribe: inbox(recipient), expectFrom: [i], worker })
    if (variant === 'longpoll') clients.push({ user: third, token: token(third), subscribe: [], expectFrom: [i], worker: workers, via: 'longpoll' })
    if (variant === 'mqtt') clients.push({ user: third, token: token(third), subscribe: inbox(third), expectFrom: [i], worker })
  }
  return { name: 'longpoll', convs, senders, clients, recipientsPerSend: variant === 'offline' ? 1 : 2 }
}

/** Users, conversations and members in one transaction, with bulk statements. */
export async function insertConversations (databaseUrl: string, convs: readonly Conversation[], type: 'direct' | 'group'): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    await client.query('BEGIN')
    const users = [...new Set(convs.flatMap(c => c.members))]
    await client.query('INSERT INTO users (id, display_name) SELECT u, u FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING', [users])
    await client.query(
      `INSERT INTO conversations (id, type, title, created_by, direct_key)
       SELECT id, $2, CASE WHEN $2 = 'group' THEN 'bench group' END, creator, CASE WHEN $2 = 'direct' THEN dkey END
       FROM unnest($1::uuid[], $3::text[], $4::text[]) AS v(id, creator, dkey)`,
      [convs.map(c => c.id), type, convs.map(c => c.members[0]), convs.map(c => [...c.members].sort().join('|'))])
    const rows = convs.flatMap(c => c.members.map((u, i) => [c.id, u, i === 0 ? 'admin' : 'member'] as const))
    await client.query(
      'INSERT INTO members (conv_id, user_id, role) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])',
      [rows.map(r => r[0]), rows.map(r => r[1]), rows.map(r => r[2])])
    await client.query('COMMIT')
  } finally {
    await client.end()
  }
}
