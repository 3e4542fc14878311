import t from 'tap'
import type { EventRow } from '../../core/messages/envelopes.js'
import { foldMessages } from '../../core/messages/fold.js'

const conv = '00000000-0000-4000-8000-000000000001'
let clock = Date.parse('2030-01-01T00:00:00Z')
function row (seq: number, sender: string, type: EventRow['type'], body: Record<string, unknown>, target: number | null = null): EventRow {
  return { conv_id: conv, seq, sender_id: sender, client_msg_id: `c${seq}`, type, body, target_seq: target, created_at: new Date(clock++) }
}

t.test('a message with nothing aimed at it folds to itself', async t => {
  const [m] = foldMessages([row(1, 'a', 'text', { text: 'hi', reply_to: 7 })], [])
  t.same(m, { seq: 1, sender_id: 'a', text: 'hi', edited: false, deleted: false, reactions: {}, reply_to: 7, ts: m?.ts })
})

t.test('a later reaction by the same user replaces theirs; null takes it back; users keep the order they last reacted in', async t => {
  const [m] = foldMessages([row(1, 'a', 'text', { text: 'hi' })], [
    row(2, 'b', 'reaction', { emoji: '👍' }, 1),
    row(3, 'c', 'reaction', { emoji: '👍' }, 1),
    row(4, 'b', 'reaction', { emoji: '😂' }, 1),
    row(5, 'd', 'reaction', { emoji: '👍' }, 1),
    row(6, 'c', 'reaction', { emoji: null }, 1),
    row(7, 'b', 'reaction', { emoji: '👍' }, 1)
  ])
  t.same(m?.reactions, { '👍': ['d', 'b'] })
})

t.test('a deleted message shows nothing and ignores what follows it', async t => {
  const [m] = foldMessages([row(1, 'a', 'text', { text: 'secret' })], [
    row(2, 'a', 'edit', { text: 'edited secret' }, 1),
    row(3, 'b', 'reaction', { emoji: '👍' }, 1),
    row(4, 'a', 'delete', {}, 1),
    row(5, 'b', 'reaction', { emoji: '😮' }, 1)
  ])
  t.match(m, { text: '', edited: true, deleted: true, reactions: {} })
})

t.test('only the page\'s text messages are folded; events aimed elsewhere are ignored', async t => {
  const page = [row(5, 'a', 'text', { text: 'five' }), row(6, 'b', 'reaction', { emoji: '👍' }, 2), row(7, 'a', 'text', { text: 'seven' })]
  const folded = foldMessages(page, [row(6, 'b', 'reaction', { emoji: '👍' }, 2), row(8, 'a', 'edit', { text: 'SEVEN' }, 7)])
  t.same(folded.map(m => [m.seq, m.text, m.edited]), [[5, 'five', false], [7, 'SEVEN', true]])
})
