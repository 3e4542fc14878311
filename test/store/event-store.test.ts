// commitBatch, the SQL of one group commit, on both drivers.
import t from 'tap'
import { commitBatch, type PendingSend } from '../../core/messages/event-store.js'
import type { Store } from '../../broker/store/index.js'
import { forEachStore } from '../helpers/stores.js'

const CONV = '00000000-0000-0000-0000-0000000000c1'
const OTHER = '00000000-0000-0000-0000-0000000000c2'

async function seed (store: Store): Promise<void> {
  await store.query("INSERT INTO users (id, display_name) VALUES ('a', 'a'), ('b', 'b'), ('c', 'c')")
  await store.query("INSERT INTO conversations (id, type, created_by) VALUES ($1, 'group', 'a'), ($2, 'group', 'c')", [CONV, OTHER])
  await store.query("INSERT INTO members (conv_id, user_id) VALUES ($1, 'a'), ($1, 'b'), ($2, 'c')", [CONV, OTHER])
}

const send = (senderId: string, id: string, convId = CONV): PendingSend => ({ convId, senderId, req: { client_msg_id: id, type: 'text', text: id } })

t.test('commitBatch', async (t) => {
  await forEachStore(t, async (t, store) => {
    await seed(store)

    t.test('assigns the next seqs in arrival order and names the members to fan out to', async (t) => {
      const out = await store.transaction(tx => commitBatch(tx, [send('a', 'm1'), send('b', 'm2'), send('a', 'm3')]))
      t.same(out.map(r => r.kind), ['stored', 'stored', 'stored'])
      t.same(out.map(r => (r.kind === 'stored' ? r.row.seq : 0)), [1, 2, 3])
      t.same(out[0]?.kind === 'stored' ? [...out[0].members].sort() : [], ['a', 'b'])
      const conv = await store.query<{ last_seq: number }>('SELECT last_seq FROM conversations WHERE id = $1', [CONV])
      t.equal(conv[0]?.last_seq, 3)
    })

    t.test('a retry, in a later batch or in the same one, is a duplicate of the original', async (t) => {
      const out = await store.transaction(tx => commitBatch(tx, [send('a', 'm1'), send('a', 'm4'), send('a', 'm4')]))
      t.same(out.map(r => r.kind), ['duplicate', 'stored', 'duplicate'])
      t.same(out.map(r => (r.kind !== 'rejected' ? r.row.seq : 0)), [1, 4, 4])
    })

    t.test('rejections consume no seq and do not fail the rest of the batch', async (t) => {
      const out = await store.transaction(tx => commitBatch(tx, [
        send('c', 'x1'), // not a member
        send('a', 'x2', '00000000-0000-0000-0000-0000000000ff'), // no such conversation
        { convId: CONV, senderId: 'b', req: { client_msg_id: 'x3', type: 'edit', target_seq: 1, text: 'not yours' } },
        { convId: CONV, senderId: 'b', req: { client_msg_id: 'x4', type: 'reaction', target_seq: 99, emoji: 'x' } },
        send('b', 'x5')
      ]))
      t.same(out.map(r => (r.kind === 'rejected' ? r.error.code : r.kind)), ['not_member', 'not_member', 'forbidden', 'not_found', 'stored'])
      t.equal(out[4]?.kind === 'stored' ? out[4].row.seq : 0, 5)
    })

    t.test('two conversations in one batch keep separate sequences', async (t) => {
      const out = await store.transaction(tx => commitBatch(tx, [send('c', 'o1', OTHER), send('a', 'm6'), send('c', 'o2', OTHER)]))
      t.same(out.map(r => (r.kind === 'stored' ? [r.row.conv_id, r.row.seq] : null)), [[OTHER, 1], [CONV, 6], [OTHER, 2]])
    })

    t.test('a delete earlier in the same batch makes a later edit of that message not_found', async (t) => {
      const out = await store.transaction(tx => commitBatch(tx, [
        { convId: CONV, senderId: 'a', req: { client_msg_id: 'd1', type: 'delete', target_seq: 3 } },
        { convId: CONV, senderId: 'a', req: { client_msg_id: 'd2', type: 'edit', target_seq: 3, text: 'too late' } }
      ]))
      t.same(out.map(r => (r.kind === 'rejected' ? r.error.code : r.kind)), ['stored', 'not_found'])
      t.match(out[1]?.kind === 'rejected' ? out[1].error.message : '', /was deleted/)
    })

    t.test('a reply may name a send stored earlier in the same batch, not a later one', async (t) => {
      const last = (await store.query<{ last_seq: number }>('SELECT last_seq FROM conversations WHERE id = $1', [CONV]))[0]?.last_seq as number
      const reply = (id: string, to: number): PendingSend => ({ convId: CONV, senderId: 'b', req: { client_msg_id: id, type: 'text', text: id, reply_to: to } })
      const out = await store.transaction(tx => commitBatch(tx, [send('a', 'r1'), reply('r2', last + 1), reply('r3', last + 5), reply('r4', last + 3)]))
      t.same(out.map(r => (r.kind === 'rejected' ? r.error.code : r.kind)), ['stored', 'stored', 'not_found', 'not_found'])
      t.same(out[1]?.kind === 'stored' ? out[1].row.body : null, { text: 'r2', reply_to: last + 1 })
    })

    t.test('a retry answers the stored event, not the retry\'s own body', async (t) => {
      const first = await commitBatch(store, [{ convId: CONV, senderId: 'a', req: { client_msg_id: 'rt', type: 'text', text: 'original' } }])
      const again = await commitBatch(store, [{ convId: CONV, senderId: 'a', req: { client_msg_id: 'rt', type: 'text', text: 'changed' } }])
      t.equal(first[0]?.kind, 'stored')
      t.equal(again[0]?.kind, 'duplicate')
      const [a, b] = [first[0], again[0]].map(r => (r?.kind !== 'rejected' ? r?.row : undefined))
      t.equal(b?.seq, a?.seq)
      t.same(b?.body, { text: 'original' })
      t.equal(new Date(b?.created_at as Date).getTime(), new Date(a?.created_at as Date).getTime())
    })

    t.test('reactions by anyone, edits and deletes by the sender only; a send rejected first may be stored by its retry', async (t) => {
      const [m] = await commitBatch(store, [send('a', 'target')])
      const seq = m?.kind === 'stored' ? m.row.seq : 0
      const out = await commitBatch(store, [
        { convId: CONV, senderId: 'b', req: { client_msg_id: 'k1', type: 'reaction', target_seq: seq, emoji: '👍' } },
        { convId: CONV, senderId: 'b', req: { client_msg_id: 'k2', type: 'delete', target_seq: seq } },
        { convId: CONV, senderId: 'a', req: { client_msg_id: 'k3', type: 'reaction', target_seq: seq + 100, emoji: 'x' } },
        { convId: CONV, senderId: 'a', req: { client_msg_id: 'k3', type: 'reaction', target_seq: seq, emoji: 'x' } },
        { convId: CONV, senderId: 'a', req: { client_msg_id: 'k3', type: 'reaction', target_seq: seq, emoji: 'y' } },
        { convId: CONV, senderId: 'a', req: { client_msg_id: 'k4', type: 'reaction', target_seq: seq + 1, emoji: 'z' } }
      ])
      t.same(out.map(r => (r.kind === 'rejected' ? r.error.code : r.kind)), ['stored', 'forbidden', 'not_found', 'stored', 'duplicate', 'not_found'])
      t.same(out[4]?.kind === 'duplicate' ? out[4].row.body : null, { emoji: 'x' }, 'the in-batch retry answers the stored one')
      t.equal(out[3]?.kind === 'stored' ? out[3].row.seq : 0, (out[0]?.kind === 'stored' ? out[0].row.seq : 0) + 1, 'rejections take no seq')
    })
  })
})
