import { randomUUID } from 'node:crypto'
import t from 'tap'
import { collect, connectUser, startNode } from '../helpers/node.js'
import { createConversation, startDirectChat, text, userId } from '../helpers/fixtures.js'

interface Msg { t: string, code?: string, message?: string, client_msg_id?: string, conv_id?: string, seq?: number, sender_id?: string }

t.test('bad sends are PUBACKed, answered with a clear error event, store nothing, and leave the connection up', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: { THREADLINE_MAX_PAYLOAD_BYTES: '8192' } })
  const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
  const conv = await createConversation(node, [alice, bob])
  const other = await createConversation(node, [bob, carol])
  const a = await connectUser(t, node, alice, 'phone')
  await a.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  let closed = false
  a.on('close', () => { closed = true })

  // a first good message so that target_seq 1 exists
  const first = collect<Msg>(a, 1)
  await a.publishAsync(`conv/${conv}/send`, text('good-1', 'hello'), { qos: 1 })
  t.equal((await first)[0]?.seq, 1)

  const cases: Array<[string, string, string | Buffer, string, RegExp]> = [
    ['malformed JSON', conv, '{"client_msg_id": "x", "type": "text", "text": ', 'bad_request', /not valid JSON/],
    ['a JSON array', conv, '[1,2,3]', 'bad_request', /JSON object/],
    ['an unknown type', conv, JSON.stringify({ client_msg_id: 'c1', type: 'poll', text: 'x' }), 'bad_request', /type must be one of/],
    ['text of the wrong type', conv, JSON.stringify({ client_msg_id: 'c2', type: 'text', text: 42 }), 'bad_request', /text/],
    ['client_msg_id of the wrong type', conv, JSON.stringify({ client_msg_id: 7, type: 'text', text: 'x' }), 'bad_request', /client_msg_id/],
    ['a missing client_msg_id', conv, JSON.stringify({ type: 'text', text: 'x' }), 'bad_request', /client_msg_id/],
    ['an empty text', conv, text('c3', ''), 'bad_request', /text/],
    ['text over 4000 code points', conv, text('c4', 'é'.repeat(4001)), 'too_large', /4000 code points/],
    ['a payload over the size limit', conv, text('c5', 'x'.repeat(9000)), 'too_large', /limit is 8192/],
    ['target_seq of the wrong type', conv, JSON.stringify({ client_msg_id: 'c6', type: 'delete', target_seq: 'one' }), 'bad_request', /target_seq/],
    ['an unknown conversation', randomUUID(), text('c7', 'hi'), 'not_member', /not a member/],
    ['a conversation the sender is not in', other, text('c8', 'hi'), 'not_member', /not a member/],
    ['a conversation id that is no UUID', 'not-a-uuid', text('c9', 'hi'), 'bad_request', /not a UUID/],
    ['an unknown target_seq', conv, JSON.stringify({ client_msg_id: 'c10', type: 'reaction', target_seq: 999, emoji: '👍' }), 'not_found', /target_seq 999/],
    ['a reply_to beyond the conversation', conv, JSON.stringify({ client_msg_id: 'c11', type: 'text', text: 'x', reply_to: 999 }), 'not_found', /reply_to 999/]
  ]
  for (const [what, convId, payload, code, message] of cases) {
    const answer = collect<Msg>(a, 1, (_t, m) => m.t === 'error')
    await a.publishAsync(`conv/${convId}/send`, payload, { qos: 1 }) // resolves on PUBACK
    const [err] = await answer
    t.equal(err?.code, code, `${what}: code ${code}`)
    t.match(err?.message, message, `${what}: the message says why`)
  }

  const oversized = collect<Msg>(a, 1, (_t, m) => m.t === 'error')
  await a.publishAsync(`conv/${conv}/send`, text('big-1', 'x'.repeat(9000)), { qos: 1 })
  t.match((await oversized)[0], { code: 'too_large', client_msg_id: 'big-1' }, 'an oversized send is never parsed, yet its answer names its client_msg_id')

  const qos0 = collect<Msg>(a, 1, (_t, m) => m.t === 'error')
  await a.publishAsync(`conv/${conv}/send`, text('q0', 'hi'), { qos: 0 })
  t.match((await qos0)[0], { code: 'bad_request', message: /QoS 1/ }, 'a QoS 0 send is answered bad_request')

  const rows = await node.store.query<{ n: number }>('SELECT count(*)::int AS n FROM events')
  t.equal(rows[0]?.n, 1, 'nothing but the first good message was stored')
  t.notOk(closed, 'the connection stayed up')

  const after = collect<Msg>(a, 1, (_t, m) => m.t === 'event')
  await a.publishAsync(`conv/${conv}/send`, text('good-2', 'still here'), { qos: 1 })
  t.equal((await after)[0]?.seq, 2, 'the next good send gets the next seq')
})

t.test('a forged sender_id is ignored: the broker stamps the sender from the token', async (t) => {
  const { node, alice, bob, conv, a, b } = await startDirectChat(t, { store: 'pglite' })
  const got = collect<Msg>(b, 1)
  await a.publishAsync(`conv/${conv}/send`, JSON.stringify({ client_msg_id: 'f1', type: 'text', text: 'it is me, bob', sender_id: bob, seq: 77, ts: 'yesterday' }), { qos: 1 })
  const [event] = await got
  t.equal(event?.sender_id, alice, 'the envelope names the real sender')
  t.equal(event?.seq, 1, 'the seq is the broker\'s')
  const rows = await node.store.query<{ sender_id: string, body: object }>('SELECT sender_id, body FROM events WHERE conv_id = $1', [conv])
  t.same(rows, [{ sender_id: alice, body: { text: 'it is me, bob' } }], 'stored with the real sender and no extra fields')
})

t.test('edits, deletes and reactions follow their rules', async (t) => {
  const { conv, a, b } = await startDirectChat(t, { store: 'pglite' })
  const send = async (payload: object): Promise<Msg> => {
    const next = collect<Msg>(b, 1)
    await b.publishAsync(`conv/${conv}/send`, JSON.stringify(payload), { qos: 1 })
    return (await next)[0] as Msg
  }
  const a1 = collect<Msg>(b, 1)
  await a.publishAsync(`conv/${conv}/send`, text('a1', 'alice wrote this'), { qos: 1 })
  await a1
  const m = await send({ client_msg_id: 'b1', type: 'text', text: 'bob wrote this', reply_to: 1 })
  t.match(m, { t: 'event', seq: 2, reply_to: 1 }, 'a reply points at an earlier seq')
  t.match(await send({ client_msg_id: 'b2', type: 'edit', target_seq: 1, text: 'hijack' }), { t: 'error', code: 'forbidden' }, 'nobody edits someone else\'s message')
  t.match(await send({ client_msg_id: 'b3', type: 'delete', target_seq: 1 }), { t: 'error', code: 'forbidden' }, 'nobody deletes someone else\'s message')
  t.match(await send({ client_msg_id: 'b4', type: 'reaction', target_seq: 1, emoji: '👍' }), { t: 'event', seq: 3, type: 'reaction', target_seq: 1, emoji: '👍' }, 'anyone reacts')
  t.match(await send({ client_msg_id: 'b5', type: 'reaction', target_seq: 3, emoji: '👍' }), { t: 'error', code: 'not_found' }, 'a reaction is no message to react to')
  t.match(await send({ client_msg_id: 'b6', type: 'edit', target_seq: 2, text: 'bob fixed this' }), { t: 'event', seq: 4, type: 'edit', target_seq: 2, text: 'bob fixed this' }, 'the sender edits')
  t.match(await send({ client_msg_id: 'b7', type: 'delete', target_seq: 2 }), { t: 'event', seq: 5, type: 'delete', target_seq: 2 }, 'the sender deletes')
  t.match(await send({ client_msg_id: 'b8', type: 'edit', target_seq: 2, text: 'too late' }), { t: 'error', code: 'not_found', message: /deleted/ }, 'a deleted message cannot be edited')
  t.match(await send({ client_msg_id: 'b9', type: 'reaction', target_seq: 1, emoji: null }), { t: 'event', seq: 6, emoji: null }, 'a null emoji removes a reaction')
})
