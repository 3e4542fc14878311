// Per conversation, the app gets every event once, in seq order: when the server's offline
// queue drops events while the client is away, the gap is filled from history before any
// later event is released; edits, deletes and reactions are folded into the messages.
import t from 'tap'
import type { EventEnvelope, Message } from '../../../clients/sdk/index.js'
import { createConversation, userId } from '../../helpers/fixtures.js'
import { startNode } from '../../helpers/node.js'
import { nextEvent, onlineClient, range, recordEvents, state } from '../../helpers/sdk.js'
import { startTcpProxy } from '../../helpers/tcp-proxy.js'

const CAP = 5
const SENT = 40

t.test(`a client away while ${SENT} events arrive (the offline queue keeps ${CAP}) gets seq 1..${SENT + 1} once each, in order`, async (t) => {
  const node = await startNode(t, { env: { THREADLINE_OFFLINE_QUEUE_MAX: String(CAP), THREADLINE_SEND_RATE: '100000', THREADLINE_SEND_BURST: '100000' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await onlineClient(t, node, alice)
  const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: node.mqttPort })
  const b = await onlineClient(t, node, bob, { transport: 'mqtt', mqttUrl: `mqtt://127.0.0.1:${proxy.port}` })
  const events = recordEvents(b, 'event')

  proxy.cut()
  await state(b, 'offline')
  const outbox = recordEvents(a, 'outbox')
  for (const i of range(1, SENT)) a.send(conv, `m${i}`)
  // SENT pending reports, then SENT sent ones: all stored while bob is away
  await outbox.until(2 * SENT)
  t.equal(outbox.got.filter(([e]) => e.status === 'sent').length, SENT, 'all stored while bob was away')

  proxy.restore()
  await state(b, 'online', 'mqtt')
  a.send(conv, 'after the gap')
  const got = await events.until(SENT + 1, 20_000)
  const seqs = got.map(([e]: [EventEnvelope]) => e.seq)
  t.same(seqs, range(1, SENT + 1), 'every seq once, in order')
  t.same(got.map(([e]: [EventEnvelope]) => e.text), [...range(1, SENT).map(i => `m${i}`), 'after the gap'], 'with their texts')
  t.same(b.messages(conv).map(m => m.seq), range(1, SENT + 1), 'messages() holds them all, in seq order')
})

t.test('edits, deletes and reactions are folded into the message they aim at', async (t) => {
  const node = await startNode(t)
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await onlineClient(t, node, alice)
  const b = await onlineClient(t, node, bob)
  const changes = recordEvents(b, 'message')

  const sent = async (entry: { temp_id: string }): Promise<number> => {
    const [e] = await nextEvent(a, 'outbox', x => x.temp_id === entry.temp_id && x.status !== 'pending')
    if (e.status === 'failed') throw new Error(`send failed: ${e.error?.code}`)
    return e.seq!
  }
  const first = await sent(a.send(conv, 'Lunch at 12?'))
  const second = await sent(a.send(conv, 'or at 1?'))
  b.react(conv, first, '🍕')
  await sent(a.react(conv, first, '👍'))
  await sent(a.edit(conv, first, 'Lunch at 12:30?'))
  await sent(a.delete(conv, second))
  await nextEvent(b, 'event', e => e.type === 'delete')

  const [lunch, gone] = b.messages(conv)
  t.match(lunch, { seq: first, sender_id: alice, text: 'Lunch at 12:30?', edited: true, deleted: false }, 'the edit gives the text')
  t.same(lunch?.reactions, { '🍕': [bob], '👍': [alice] }, 'one reaction per user')
  t.match(gone, { seq: second, text: '', deleted: true, reactions: {} }, 'the delete empties the message')
  t.ok(changes.got.length >= 6, "each change came as a 'message' event")
  t.same(a.messages(conv), b.messages(conv), 'both sides fold alike')

  // history folds the same way, for a client that saw none of it live
  const late = await onlineClient(t, node, bob, { deviceId: 'tablet' })
  t.same(late.messages(conv), [], 'a new client holds nothing yet: it starts after what happened')
  const plain = (ms: Message[]): Message[] => ms.map(({ client_msg_id: _id, ...m }) => m as Message)
  t.same(plain(await late.history(conv)), plain(b.messages(conv)), 'history() gives the same folded messages')
  t.same(plain(late.messages(conv)), plain(b.messages(conv)), 'and they join messages()')
})
