// "A client may subscribe only to its own user/<me>/inbox, to conv/<c>/events|typing|receipts
// of conversations it belongs to, and to presence/<u> of users allowed by <u>'s setting;
// anything else gets SUBACK 0x80 and the connection stays up" (DESIGN.md §3).
import t from 'tap'
import { startNode, connectUser } from '../helpers/node.js'
import { createConversation, nextMessage, sendText, suback } from '../helpers/access.js'

const node = await startNode(t)
const mine = await createConversation(node, ['alice', 'bob'])
const theirs = await createConversation(node, ['bob', 'carol'])
await createConversation(node, ['alice', 'dave'])
await node.store.query("UPDATE users SET presence_visibility = 'nobody' WHERE id = 'carol'")
await node.store.query("UPDATE users SET presence_visibility = 'contacts' WHERE id = 'bob'")
await node.store.query("INSERT INTO users (id, display_name, presence_visibility) VALUES ('erin', 'erin', 'contacts'), ('frank', 'frank', 'everyone')")

const refused: Array<[string, string]> = [
  ['everything', '#'],
  ['every user\'s inbox through a leading wildcard', '+/inbox'],
  ['every user\'s inbox', 'user/+/inbox'],
  ['another user\'s inbox', 'user/bob/inbox'],
  ['the events of a conversation one is not in', `conv/${theirs}/events`],
  ['the typing of a conversation one is not in', `conv/${theirs}/typing`],
  ['the receipts of a conversation one is not in', `conv/${theirs}/receipts`],
  ['everything of a member conversation', `conv/${mine}/#`],
  ['any topic of a member conversation', `conv/${mine}/+`],
  ['a member conversation\'s raw sends', `conv/${mine}/send`],
  ['a member conversation\'s raw read markers', `conv/${mine}/read`],
  ['every conversation\'s events (users are not integrators)', 'conv/+/events'],
  ['$SYS', '$SYS/#'],
  ['the broker\'s own $ channel', '$threadline/#'],
  ['every user\'s presence', 'presence/+'],
  ['the presence of a user who shows it to nobody', 'presence/carol'],
  ['the presence of a user who shows it to contacts only, not being one', 'presence/erin'],
  ['one\'s own raw presence topic', 'user/alice/presence'],
  ['an open topic when THREADLINE_OPEN_TOPICS=none', 'foo/bar']
]

t.test('refused filters get 0x80 and the connection stays up', async (t) => {
  const alice = await connectUser(t, node, 'alice', 'phone')
  let dropped = false
  alice.on('close', () => { dropped = true })
  for (const [what, filter] of refused) {
    t.same(await suback(alice, filter), [128], `${what}: ${filter}`)
  }
  t.same(await suback(alice, refused.map(([, f]) => f)), refused.map(() => 128), 'all of them in one SUBSCRIBE')

  // prove the connection still works: a new subscription and a message on it
  t.same(await suback(alice, 'user/alice/inbox'), [1])
  const bob = await connectUser(t, node, 'bob', 'phone')
  const got = nextMessage(alice, 'user/alice/inbox')
  await sendText(bob, mine, 'after-refusals')
  t.match(await got, { t: 'event', conv_id: mine, client_msg_id: 'after-refusals' })
  t.notOk(dropped, 'never disconnected')
})

t.test('own inbox and a member conversation\'s events, typing and receipts are granted', async (t) => {
  const alice = await connectUser(t, node, 'alice', 'tablet')
  t.same(await suback(alice, ['user/alice/inbox', `conv/${mine}/events`, `conv/${mine}/typing`, `conv/${mine}/receipts`]), [1, 1, 1, 1])
  t.same(await suback(alice, `conv/${mine}/typing`, 0), [0], 'QoS 0 as asked')
  const bob = await connectUser(t, node, 'bob', 'tablet')
  const got = nextMessage(alice, `conv/${mine}/events`)
  await sendText(bob, mine, 'granted-1')
  t.match(await got, { conv_id: mine, sender_id: 'bob', client_msg_id: 'granted-1' })
})

t.test('presence is granted as the subject\'s setting allows', async (t) => {
  const alice = await connectUser(t, node, 'alice', 'laptop')
  t.same(await suback(alice, 'presence/alice'), [1], 'one\'s own')
  t.same(await suback(alice, 'presence/frank'), [1], 'everyone')
  t.same(await suback(alice, 'presence/bob'), [1], 'contacts, sharing a conversation')
  t.same(await suback(alice, ['presence/dave', 'presence/carol', 'presence/erin']), [1, 128, 128], 'everyone (default), nobody, contacts not shared')
})

t.test('a mixed SUBSCRIBE grants exactly the allowed topics', async (t) => {
  const alice = await connectUser(t, node, 'alice', 'watch')
  t.same(await suback(alice, ['user/alice/inbox', 'user/bob/inbox', `conv/${mine}/events`, `conv/${theirs}/events`, '#']), [1, 128, 1, 128, 128])
})
