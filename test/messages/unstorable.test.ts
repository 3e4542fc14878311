// DESIGN.md §3 `bad_request`: "also text or ids the store can't hold: U+0000, ill-formed
// UTF-16, integers outside 0..2^53−1". Each of these used to pass validation and then
// abort the commit batch it shared with other senders (every send of it `unavailable`,
// the sender disconnected, and its session resending the same poison at reconnect).
import t from 'tap'
import { collect, connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'

interface Msg { t: string, code?: string, message?: string, client_msg_id?: string, seq?: number, text?: string }

const json = (v: Record<string, unknown>): string => JSON.stringify(v)
/** a text send whose JSON carries `bytes` raw inside the text string */
const withBytes = (clientMsgId: string, bytes: number[]): Buffer => Buffer.concat([
  Buffer.from(`{"client_msg_id":"${clientMsgId}","type":"text","text":"a`), Buffer.from(bytes), Buffer.from('b"}')
])

const cases: Array<[string, string | Buffer, RegExp]> = [
  ['U+0000 in text', json({ client_msg_id: 'n1', type: 'text', text: 'a\u0000b' }), /text contains U\+0000/],
  ['a lone high surrogate in text', json({ client_msg_id: 'n2', type: 'text', text: 'a\ud800b' }), /text is not well-formed UTF-16/],
  ['a lone low surrogate at the end of text', '{"client_msg_id":"n3","type":"text","text":"ab\\udc00"}', /text is not well-formed UTF-16/],
  ['U+0000 in client_msg_id', json({ client_msg_id: 'n\u00004', type: 'text', text: 'hi' }), /client_msg_id contains U\+0000/],
  ['a lone surrogate in client_msg_id', json({ client_msg_id: 'n\ud8005', type: 'text', text: 'hi' }), /client_msg_id is not well-formed/],
  ['U+0000 in an emoji', json({ client_msg_id: 'n6', type: 'reaction', target_seq: 1, emoji: '\u0000' }), /emoji/],
  ['target_seq 1e19', '{"client_msg_id":"n7","type":"reaction","target_seq":1e19,"emoji":"x"}', /target_seq/],
  ['target_seq 2^53', json({ client_msg_id: 'n8', type: 'delete', target_seq: 2 ** 53 }), /target_seq/],
  ['reply_to 1e19', '{"client_msg_id":"n9","type":"text","text":"x","reply_to":1e19}', /reply_to/],
  ['invalid UTF-8 in text', withBytes('n10', [0xff, 0xfe]), /not valid UTF-8/],
  ['a truncated UTF-8 sequence in text', withBytes('n11', [0xe2, 0x82]), /not valid UTF-8/],
  ['invalid UTF-8 in client_msg_id', Buffer.concat([Buffer.from('{"client_msg_id":"n'), Buffer.from([0xc3]), Buffer.from('","type":"text","text":"x"}')]), /not valid UTF-8/],
  ['whitespace-only text', json({ client_msg_id: 'n12', type: 'text', text: ' \t\n\u3000 ' }), /text must not be blank/],
  ['a whitespace-only edit', json({ client_msg_id: 'n13', type: 'edit', target_seq: 1, text: '   ' }), /text must not be blank/]
]

for (const store of ['pg', 'pglite'] as const) {
  t.test(`${store}: sends the store can't hold are refused alone with bad_request, PUBACKed, the connection up`, async (t) => {
    const node = await startNode(t, { store })
    const [alice, bob] = [userId('alice'), userId('bob')]
    const conv = await createConversation(node, [alice, bob])
    // the session apps are told to use (docs/protocol.md): persistent, reconnecting on
    // refusals; a send that kept failing would loop through reconnects here
    const a = await connectUser(t, node, alice, 'phone', { clean: false, reconnectPeriod: 20, reconnectOnConnackError: true })
    await a.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
    let closes = 0
    a.on('close', () => { closes++ })
    const errors: Msg[] = []
    a.on('message', (_topic, payload) => {
      const m = JSON.parse(payload.toString()) as Msg
      if (m.t === 'error') errors.push(m)
    })

    const first = collect<Msg>(a, 1, (_t, m) => m.t === 'event')
    await a.publishAsync(`conv/${conv}/send`, text('good-1', 'hello'), { qos: 1 })
    t.equal((await first)[0]?.seq, 1)

    for (const [what, payload, message] of cases) {
      const answer = collect<Msg>(a, 1, (_t, m) => m.t === 'error')
      await a.publishAsync(`conv/${conv}/send`, payload, { qos: 1 }) // resolves on PUBACK
      const [err] = await answer
      t.equal(err?.code, 'bad_request', `${what}: bad_request`)
      t.match(err?.message, message, `${what}: the message says why`)
    }

    const after = collect<Msg>(a, 1, (_t, m) => m.t === 'event')
    await a.publishAsync(`conv/${conv}/send`, text('good-2', 'still here'), { qos: 1 })
    t.equal((await after)[0]?.seq, 2, 'no refused send consumed a seq')
    t.equal(closes, 0, 'the connection never closed')
    t.equal(errors.length, cases.length, 'each refused send was answered once: nothing was resent')
    const rows = await node.store.query<{ n: number }>('SELECT count(*)::int AS n FROM events')
    t.equal(rows[0]?.n, 2, 'only the good sends were stored')

    // the same sends over HTTP: 400 bad_request, not 503 "retry"
    for (const [what, payload, message] of cases) {
      const res = await node.app.inject({
        method: 'POST',
        url: `/v1/conversations/${conv}/messages`,
        headers: { authorization: `Bearer ${token(node, alice)}`, 'content-type': 'application/json' },
        payload
      })
      t.equal(res.statusCode, 400, `HTTP, ${what}: 400`)
      t.match(res.json(), { code: 'bad_request', message }, `HTTP, ${what}: bad_request saying why`)
    }
    const still = await node.store.query<{ n: number }>('SELECT count(*)::int AS n FROM events')
    t.equal(still[0]?.n, 2, 'HTTP stored none of them either')
  })
}

t.test('a group title the store can\'t hold, or a blank one, is refused with 400', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  const alice = userId('alice')
  for (const title of ['a\u0000b', 'x\udc00', '   ']) {
    const res = await node.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: { authorization: `Bearer ${token(node, alice)}` },
      payload: { type: 'group', title, members: [userId('bob')] }
    })
    t.equal(res.statusCode, 400, `title ${JSON.stringify(title)}: 400`)
    t.equal(res.json().code, 'bad_request')
  }
})
