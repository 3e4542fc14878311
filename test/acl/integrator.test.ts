// "An integrator (role integrator) may use conv/+/events and sees only its
// conversations" (DESIGN.md §3).
import t from 'tap'
import { startNode, connectUser, token } from '../helpers/node.js'
import { connectRaw, createConversation, nextMessage, record, removeMember, sendText, suback, tcpUrl } from '../helpers/access.js'

const node = await startNode(t)
const withBot = await createConversation(node, ['alice', 'bot'])
const withoutBot = await createConversation(node, ['alice', 'bob'])

const connectAs = (user: string, role: 'user' | 'integrator') =>
  connectRaw(t, tcpUrl(node), { clientId: `${user}:svc`, username: user, password: token(node, user, { role }) })

t.test('an integrator gets conv/+/events and receives the events of its conversations only', async (t) => {
  const bot = await connectAs('bot', 'integrator')
  t.same(await suback(bot, 'conv/+/events'), [1])
  const got = record(bot)
  const alice = await connectUser(t, node, 'alice', 'phone')

  // the other conversation first: were it leaked, it would arrive before the awaited one
  const mine = nextMessage(bot, `conv/${withBot}/events`)
  await sendText(alice, withoutBot, 'not-for-bot')
  await sendText(alice, withBot, 'for-bot')
  t.match(await mine, { t: 'event', conv_id: withBot, sender_id: 'alice', client_msg_id: 'for-bot' })
  t.same(got.map(m => m.topic), [`conv/${withBot}/events`], 'nothing of the conversation it is not in')
})

t.test('an integrator removed from a conversation stops receiving it on the wildcard', async (t) => {
  const convId = await createConversation(node, ['alice', 'bot'])
  const later = await createConversation(node, ['alice', 'bot'])
  const bot = await connectRaw(t, tcpUrl(node), { clientId: 'bot:svc2', username: 'bot', password: token(node, 'bot', { role: 'integrator' }) })
  t.same(await suback(bot, 'conv/+/events'), [1])
  const alice = await connectUser(t, node, 'alice', 'tablet')
  const first = nextMessage(bot, `conv/${convId}/events`)
  await sendText(alice, convId, 'while-member')
  t.match(await first, { client_msg_id: 'while-member' })

  await removeMember(node, convId, 'bot')
  const got = record(bot)
  const marker = nextMessage(bot, `conv/${later}/events`)
  await sendText(alice, convId, 'after-removal')
  await sendText(alice, later, 'marker')
  t.match(await marker, { client_msg_id: 'marker' })
  t.same(got.map(m => m.topic), [`conv/${later}/events`], 'nothing more of the conversation it left')
})

t.test('a user (not an integrator) gets 0x80 for conv/+/events', async (t) => {
  const alice = await connectAs('alice', 'user')
  t.same(await suback(alice, 'conv/+/events'), [128])
  t.same(await suback(alice, 'user/alice/inbox'), [1], 'and stays connected')
})

t.test('an integrator gets no other wildcard either', async (t) => {
  const bot = await connectRaw(t, tcpUrl(node), { clientId: 'bot:svc3', username: 'bot', password: token(node, 'bot', { role: 'integrator' }) })
  t.same(await suback(bot, ['conv/+/typing', 'conv/+/receipts', 'conv/#', 'user/+/inbox', '#', `conv/${withoutBot}/events`]), [128, 128, 128, 128, 128, 128])
})
