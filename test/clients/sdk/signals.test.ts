// Typing (throttled out, expiring in), presence, the conversation list with unread counts
// and markRead(), and sync() after a long absence.
import t from 'tap'
import { createConversation, userId } from '../../helpers/fixtures.js'
import { collect, connectUser, startNode } from '../../helpers/node.js'
import { nextEvent, onlineClient, range, recordEvents, state } from '../../helpers/sdk.js'
import { startTcpProxy } from '../../helpers/tcp-proxy.js'

t.test('typing: a burst of typing(true) publishes one signal; stopping publishes one false; a remote indicator expires by itself', async (t) => {
  // the server forwards every signal here, so what arrives is what the client published
  const node = await startNode(t, { env: { THREADLINE_TYPING_INTERVAL_MS: '0' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await onlineClient(t, node, alice, { typingIntervalMs: 60_000 })
  const b = await onlineClient(t, node, bob, { typingExpireMs: 300 })
  const watcher = await connectUser(t, node, bob, 'watcher')
  await watcher.subscribeAsync(`conv/${conv}/typing`, { qos: 0 })
  const wire = collect<{ typing: boolean }>(watcher, 3, topic => topic.endsWith('/typing'))
  const changes = recordEvents(b, 'typing')

  for (let i = 0; i < 20; i++) a.typing(conv, true) // every keystroke
  const [on] = await nextEvent(b, 'typing', c => c.typing)
  t.same(on, { conv_id: conv, user_id: alice, typing: true }, 'bob sees alice typing')
  t.same(b.typingUsers(conv), [alice])
  const startedAt = performance.now()
  const [off] = await nextEvent(b, 'typing', c => !c.typing)
  const after = performance.now() - startedAt
  t.same(off, { conv_id: conv, user_id: alice, typing: false }, 'and the indicator ends without a word from alice')
  t.ok(after >= 250 && after < 2000, `after typingExpireMs (${Math.round(after)} ms)`)
  t.same(b.typingUsers(conv), [])

  a.typing(conv, false)
  a.typing(conv, false)
  t.same(changes.got.map(([c]) => c.typing), [true, false], 'bob saw start and end once each')
  // typing again after a stop goes out at once; on the wire it also closes the count
  a.typing(conv, true)
  await nextEvent(b, 'typing', c => c.typing)
  t.same((await wire).map(w => w.typing), [true, false, true], 'twenty typing(true) made one signal, two typing(false) one')
  // a message from a user ends their indicator, as the protocol says
  a.send(conv, 'done typing')
  await nextEvent(b, 'typing', c => !c.typing)
  t.pass('sending ends the indicator')
})

t.test('presence: watchPresence() reports a user coming online and going offline', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_PRESENCE_GRACE_MS: '100' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  await createConversation(node, [alice, bob])
  const b = await onlineClient(t, node, bob)
  const offline = nextEvent(b, 'presence', p => p.user_id === alice && p.state === 'offline')
  b.watchPresence([alice])
  await offline
  t.equal(b.presenceOf(alice)?.state, 'offline', 'alice is offline at first')

  const online = nextEvent(b, 'presence', p => p.user_id === alice && p.state === 'online')
  const a = await onlineClient(t, node, alice)
  await online
  t.equal(b.presenceOf(alice)?.state, 'online', 'then online')

  const away = nextEvent(b, 'presence', p => p.user_id === alice && p.state === 'away')
  a.setPresence('away')
  await away
  t.pass('away when her app goes to the background')

  const gone = nextEvent(b, 'presence', p => p.user_id === alice && p.state === 'offline')
  await a.close()
  const [last] = await gone
  t.type(last.last_seen, 'string', 'offline again after she closes, with last_seen')
})

t.test('conversations() has unread counts; messages from others raise them; markRead() clears them here and on the server', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_RECEIPT_WINDOW_MS: '0' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await onlineClient(t, node, alice)
  const b = await onlineClient(t, node, bob)
  const seen = recordEvents(b, 'event')
  for (const i of range(1, 3)) a.send(conv, `n${i}`)
  await seen.until(3)
  t.equal(b.typingUsers(conv).length, 0)
  const [listed] = await b.conversations()
  t.match(listed, { id: conv, unread_count: 3, last_seq: 3, last_message: { seq: 3, text: 'n3', sender_id: alice } }, 'three unread, the last message shown')

  const cleared = nextEvent(b, 'conversation', v => v.id === conv && v.unread_count === 0)
  b.markRead(conv, 3)
  await cleared
  t.pass("markRead() reports the count at 0 at once ('conversation' event)")
  await nextEvent(a, 'receipts', r => r.markers.some(m => m.user_id === bob && m.read_seq === 3))
  const [again] = await b.conversations()
  t.match(again, { unread_count: 0, markers: { read_seq: 3 } }, 'and the server agrees')

  a.send(conv, 'one more')
  const [raised] = await nextEvent(b, 'conversation', v => v.id === conv && v.last_seq === 4)
  t.equal(raised.unread_count, 1, 'a new message from alice: one unread')
})

t.test('after a long absence, sync() brings new conversations and the events missed, in order', async (t) => {
  // an offline queue of one: nearly everything sent while bob is away must come from history
  const node = await startNode(t, { env: { THREADLINE_OFFLINE_QUEUE_MAX: '1' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const known = await createConversation(node, [alice, bob])
  const a = await onlineClient(t, node, alice)
  const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: node.mqttPort })
  const b = await onlineClient(t, node, bob, { transport: 'mqtt', mqttUrl: `mqtt://127.0.0.1:${proxy.port}` })
  const events = recordEvents(b, 'event')
  const views = recordEvents(b, 'conversation')

  proxy.cut()
  await state(b, 'offline')
  const outbox = recordEvents(a, 'outbox')
  for (const i of range(1, 4)) a.send(known, `k${i}`)
  const group = await a.createConversation({ type: 'group', title: 'While you were out', members: [bob] })
  a.send(group.id, 'welcome')
  a.send(group.id, 'to the group')
  await outbox.until(12)

  proxy.restore()
  await state(b, 'online', 'mqtt')
  await b.sync()
  const got = events.got.map(([e]) => e).filter(e => e.conv_id === known)
  t.same(got.map(e => e.text), ['k1', 'k2', 'k3', 'k4'], 'the known conversation: every missed event, in order')
  const newView = views.got.map(([v]) => v).filter(v => v.id === group.id).at(-1)
  t.match(newView, { title: 'While you were out', last_seq: 2 }, 'the new group is in the list')
  t.equal(newView?.unread_count, 2, 'with its unread count')
  t.ok((await b.conversations()).some(v => v.id === group.id), 'conversations() lists it')
  t.same((await b.history(group.id)).map(m => m.text), ['welcome', 'to the group'], 'its messages come from history()')
})

t.test('two clients in one process share nothing: each is its own user', async (t) => {
  const node = await startNode(t)
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await onlineClient(t, node, alice)
  const b = await onlineClient(t, node, bob)
  const entry = a.send(conv, 'mine')
  await nextEvent(b, 'event', e => e.client_msg_id === entry.client_msg_id)
  t.equal(b.outbox().length, 0, "bob's outbox does not hold alice's send")
  t.equal(a.userId, alice)
  t.equal(b.userId, bob)
})
