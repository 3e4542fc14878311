// The SDK's own unread counting stops at the server's cap, where the count means "this
// many or more" (GET /v1/conversations saturates unread_count there).
import t from 'tap'
import { ConversationList, UNREAD_COUNT_MAX } from '../../../clients/sdk/conversations.js'
import { UNREAD_COUNT_MAX as SERVER_MAX } from '../../../schemas/index.js'
import type { ConversationView, EventEnvelope } from '../../../clients/sdk/types.js'

const CONV = '00000000-0000-0000-0000-00000000a001'

function view (unread: number, lastSeq: number): ConversationView {
  return {
    id: CONV,
    type: 'group',
    title: 't',
    created_at: '2026-01-01T00:00:00.000Z',
    last_seq: lastSeq,
    members: ['me', 'peer'],
    last_message: null,
    unread_count: unread,
    markers: { delivered_seq: 0, read_seq: 0 },
    muted_until: null
  } as unknown as ConversationView
}

const text = (seq: number): EventEnvelope => ({ t: 'event', conv_id: CONV, seq, sender_id: 'peer', client_msg_id: `m${seq}`, type: 'text', text: 'hi', ts: '2026-01-01T00:00:00.000Z' })

function list (unread: number, lastSeq: number): { list: ConversationList, seen: () => number } {
  let last = unread
  const messages = { list: () => [], get: () => ({ sender_id: 'peer' }) }
  const l = new ConversationList({ me: 'me', messages: messages as never, countUnread: () => null, changed: (v) => { last = v.unread_count } })
  l.merge(view(unread, lastSeq))
  return { list: l, seen: () => last }
}

t.test('the SDK and the server cap unread_count alike', async (t) => {
  t.equal(UNREAD_COUNT_MAX, SERVER_MAX)
})

t.test('below the cap, new texts count; at the cap they do not, and a delete does not lower it', async (t) => {
  const below = list(UNREAD_COUNT_MAX - 2, 5000)
  below.list.applyEvent(text(5001))
  t.equal(below.seen(), UNREAD_COUNT_MAX - 1)
  below.list.applyEvent(text(5002))
  below.list.applyEvent(text(5003))
  t.equal(below.seen(), UNREAD_COUNT_MAX, 'saturates')
  below.list.applyEvent({ t: 'event', conv_id: CONV, seq: 5004, sender_id: 'peer', client_msg_id: 'd', type: 'delete', target_seq: 5003, ts: '2026-01-01T00:00:00.000Z' })
  t.equal(below.seen(), UNREAD_COUNT_MAX, '"999 or more" minus one is still unknown')
})
