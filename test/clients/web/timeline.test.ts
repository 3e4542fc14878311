// What the open conversation shows, without a browser: order, keys and marks.
import t from 'tap'
import type { Message, OutboxEntry } from '../../../clients/sdk/index.js'
import { Markers, timeline, typingText } from '../../../clients/web/timeline.js'

const CONV = '00000000-0000-4000-8000-000000000001'
const ts = '2026-11-29T15:00:00.000Z'
const msg = (seq: number, sender: string, text: string, extra: Partial<Message> = {}): Message =>
  ({ conv_id: CONV, seq, sender_id: sender, text, edited: false, deleted: false, reactions: {}, ts, ...extra })
const entry = (clientMsgId: string, text: string, extra: Partial<OutboxEntry> = {}): OutboxEntry =>
  ({ temp_id: `t-${clientMsgId}`, client_msg_id: clientMsgId, conv_id: CONV, type: 'text', text, status: 'pending', created_at: ts, ...extra })

t.test('markers are applied with max, and read implies delivered', async (t) => {
  const m = new Markers()
  m.apply({ t: 'receipts', conv_id: CONV, markers: [{ user_id: 'bob', delivered_seq: 5, read_seq: 3 }] })
  m.apply({ t: 'receipts', conv_id: CONV, markers: [{ user_id: 'bob', delivered_seq: 2, read_seq: 1 }] })
  t.equal(m.markOf(CONV, 3, ['bob']), 'read', 'an older summary arriving late changes nothing')
  t.equal(m.markOf(CONV, 5, ['bob']), 'delivered')
  t.equal(m.markOf(CONV, 6, ['bob']), 'sent')
  m.apply({ t: 'receipts', conv_id: CONV, markers: [{ user_id: 'bob', delivered_seq: 0, read_seq: 7 }] })
  t.equal(m.markOf(CONV, 7, ['bob']), 'read')
})

t.test('in a group, ✓✓ and read mean every other member', async (t) => {
  const m = new Markers()
  m.apply({ t: 'receipts', conv_id: CONV, markers: [{ user_id: 'bob', delivered_seq: 4, read_seq: 4 }] })
  t.equal(m.markOf(CONV, 4, ['bob', 'carol']), 'sent', 'carol has not got it')
  m.apply({ t: 'receipts', conv_id: CONV, markers: [{ user_id: 'carol', delivered_seq: 4, read_seq: 0 }] })
  t.equal(m.markOf(CONV, 4, ['bob', 'carol']), 'delivered')
  m.apply({ t: 'receipts', conv_id: CONV, markers: [{ user_id: 'carol', delivered_seq: 4, read_seq: 4 }] })
  t.equal(m.markOf(CONV, 4, ['bob', 'carol']), 'read')
})

t.test('stored messages in seq order, then sends waiting for a seq; a send keeps its key once stored', async (t) => {
  const markers = new Markers()
  const base = { me: 'ann', convId: CONV, others: ['bob'], markers }
  const pending = entry('c1', 'on its way')
  const failed = entry('c2', 'refused', { status: 'failed', error: { code: 'too_large', message: 'text is over 4000 code points' } })
  const before = timeline({ ...base, messages: [msg(2, 'bob', 'two'), msg(1, 'ann', 'one')].sort((a, b) => a.seq - b.seq), outbox: [pending, failed] })
  t.same(before.map(i => [i.key, i.seq, i.own, i.mark]), [
    ['seq:1', 1, true, 'sent'],
    ['seq:2', 2, false, null],
    ['c1', null, true, 'pending'],
    ['c2', null, true, 'failed']
  ])
  t.equal(before[3]?.error, 'too_large: text is over 4000 code points')

  // stored as seq 3: acknowledged before its event came, then with its event
  const acked = { ...pending, status: 'sent' as const, seq: 3 }
  const waiting = timeline({ ...base, messages: [msg(1, 'ann', 'one'), msg(2, 'bob', 'two')], outbox: [acked] })
  t.same(waiting.map(i => [i.key, i.seq, i.mark]), [['seq:1', 1, 'sent'], ['seq:2', 2, null], ['c1', 3, 'sent']])
  markers.apply({ t: 'receipts', conv_id: CONV, markers: [{ user_id: 'bob', delivered_seq: 3, read_seq: 0 }] })
  const arrived = timeline({ ...base, messages: [msg(1, 'ann', 'one'), msg(2, 'bob', 'two'), msg(3, 'ann', 'on its way', { client_msg_id: 'c1' })], outbox: [acked] })
  t.same(arrived.map(i => [i.key, i.seq, i.mark]), [['seq:1', 1, 'delivered'], ['seq:2', 2, null], ['c1', 3, 'delivered']], 'same key: the bubble is updated, not replaced')
})

t.test('in a group, the outbox saying "read" (by someone) is not read by all', async (t) => {
  const markers = new Markers()
  markers.apply({ t: 'receipts', conv_id: CONV, markers: [{ user_id: 'bob', delivered_seq: 1, read_seq: 1 }, { user_id: 'carol', delivered_seq: 1, read_seq: 0 }] })
  const [item] = timeline({ me: 'ann', convId: CONV, others: ['bob', 'carol'], markers, messages: [msg(1, 'ann', 'hi all', { client_msg_id: 'g1' })], outbox: [entry('g1', 'hi all', { status: 'read', seq: 1 })] })
  t.equal(item?.mark, 'delivered', 'carol got it but has not read it')
})

t.test('an outbox entry of another conversation, or a reaction, is not a bubble here', async (t) => {
  const items = timeline({
    me: 'ann',
    convId: CONV,
    others: ['bob'],
    markers: new Markers(),
    messages: [],
    outbox: [entry('x', 'elsewhere', { conv_id: '00000000-0000-4000-8000-000000000002' }), entry('y', '', { type: 'reaction', target_seq: 1, emoji: '👍' })]
  })
  t.same(items, [])
})

t.test('typing text names one or two, counts more', async (t) => {
  t.equal(typingText([]), '')
  t.equal(typingText(['bob']), 'bob is typing…')
  t.equal(typingText(['bob', 'carol']), 'bob and carol are typing…')
  t.equal(typingText(['bob', 'carol', 'dan']), '3 people are typing…')
})
