// "A member removed from a conversation keeps old subscriptions, so every forward is
// checked again" (DESIGN.md §3): removal (SQL + membership.announce, as the REST routes
// do it) ends delivery on subscriptions made while a member.
import t from 'tap'
import { startNode, connectUser } from '../helpers/node.js'
import { announce, createConversation, nextMessage, record, removeMember, sendText, suback } from '../helpers/access.js'

const node = await startNode(t)

/** A broker-originated packet, the way the typing and receipts plugins publish. */
const brokerPublish = (topic: string, body: object, qos: 0 | 1 = 0): Promise<void> => new Promise((resolve, reject) => {
  node.broker.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(body)), qos, retain: false, dup: false },
    (err) => (err ? reject(err) : resolve()))
})

t.test('a removed member stops receiving conv/<c>/events, typing and receipts on existing subscriptions', async (t) => {
  const convId = await createConversation(node, ['alice', 'bob'])
  const marker = await createConversation(node, ['alice', 'bob'])
  const alice = await connectUser(t, node, 'alice', 'phone')
  const bob = await connectUser(t, node, 'bob', 'phone')
  const topics = [`conv/${convId}/events`, `conv/${convId}/typing`, `conv/${convId}/receipts`]
  t.same(await suback(alice, [...topics, `conv/${marker}/events`]), [1, 1, 1, 1])

  const before = nextMessage(alice, `conv/${convId}/events`)
  await sendText(bob, convId, 'before')
  t.match(await before, { client_msg_id: 'before' }, 'delivered while a member')

  await removeMember(node, convId, 'alice')
  const got = record(alice)
  const done = nextMessage(alice, `conv/${marker}/events`)
  await sendText(bob, convId, 'after')
  await brokerPublish(`conv/${convId}/typing`, { user_id: 'bob', typing: true })
  await brokerPublish(`conv/${convId}/receipts`, { t: 'receipts', conv_id: convId, markers: [] })
  await sendText(bob, marker, 'marker')
  t.match(await done, { client_msg_id: 'marker' })
  t.same(got.map(m => m.topic), [`conv/${marker}/events`], 'nothing more of the conversation she left')
  t.same(await suback(alice, `conv/${convId}/events`), [128], 'subscribing again is refused')
})

t.test('a member added while connected can subscribe and receives at once', async (t) => {
  const convId = await createConversation(node, ['bob', 'carol'])
  const dave = await connectUser(t, node, 'dave', 'phone')
  t.same(await suback(dave, `conv/${convId}/events`), [128], 'not yet a member')

  await node.store.query('INSERT INTO members (conv_id, user_id) VALUES ($1, $2)', [convId, 'dave'])
  await announce(node, { conv_id: convId, added: ['dave'], removed: [] })
  t.same(await suback(dave, [`conv/${convId}/events`, 'user/dave/inbox']), [1, 1])
  const bob = await connectUser(t, node, 'bob', 'tablet')
  const onEvents = nextMessage(dave, `conv/${convId}/events`)
  const onInbox = nextMessage(dave, 'user/dave/inbox')
  await sendText(bob, convId, 'welcome')
  t.match(await onEvents, { client_msg_id: 'welcome' })
  t.match(await onInbox, { client_msg_id: 'welcome' })
})

t.test('removal reaches every device of the user', async (t) => {
  const convId = await createConversation(node, ['erin', 'frank'])
  const marker = await createConversation(node, ['erin', 'frank'])
  const phone = await connectUser(t, node, 'erin', 'phone')
  const laptop = await connectUser(t, node, 'erin', 'laptop')
  for (const device of [phone, laptop]) t.same(await suback(device, [`conv/${convId}/events`, `conv/${marker}/events`]), [1, 1])

  await removeMember(node, convId, 'erin')
  const got = [record(phone), record(laptop)]
  const done = [nextMessage(phone, `conv/${marker}/events`), nextMessage(laptop, `conv/${marker}/events`)]
  const frank = await connectUser(t, node, 'frank', 'phone')
  await sendText(frank, convId, 'after')
  await sendText(frank, marker, 'marker')
  await Promise.all(done)
  t.same(got.map(g => g.map(m => m.topic)), [[`conv/${marker}/events`], [`conv/${marker}/events`]])
})
