// "`$share/…` is refused (SUBACK 0x80) until shared subscriptions really work" (DESIGN.md
// §3): Aedes 1.x has none, so a granted one would silently deliver nothing.
import t from 'tap'
import { connectUser, startNode } from '../helpers/node.js'
import { closed, connectRaw, createConversation, nextMessage, sendText, suback, tcpUrl } from '../helpers/access.js'
import { userId } from '../helpers/fixtures.js'

t.test('a shared subscription gets 0x80 for every role, and the connection stays up', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_OPEN_TOPICS: 'authenticated' } })
  const [alice, bob, acme, root] = [userId('alice'), userId('bob'), userId('acme'), userId('root')]
  const conv = await createConversation(node, [alice, bob, acme])
  const cases: Array<[string, 'user' | 'integrator' | 'admin', string, string]> = [
    ['a user\'s own inbox, shared', 'user', alice, `$share/phones/user/${alice}/inbox`],
    ['a member conversation\'s events, shared', 'user', alice, `$share/g/conv/${conv}/events`],
    ['an open topic, shared', 'user', alice, '$share/g/sensors/#'],
    ['an integrator\'s conv/+/events, shared among its workers', 'integrator', acme, '$share/workers/conv/+/events'],
    ['$SYS for an admin, shared', 'admin', root, '$share/ops/$SYS/#'],
    ['a malformed one without a filter', 'user', alice, '$share/g']
  ]
  for (const [what, role, user, filter] of cases) {
    const client = await connectUser(t, node, user, `dev-${role}`, { password: node.tokens.sign({ sub: user, role }, 3600) })
    let dropped = false
    client.on('close', () => { dropped = true })
    t.same(await suback(client, filter), [128], `${what}: ${filter} is refused`)
    t.notOk(dropped, `${what}: the connection stays up`)
  }

  // the same filters unshared are granted, and deliver
  const a = await connectUser(t, node, alice, 'phone')
  t.same(await suback(a, [`$share/phones/user/${alice}/inbox`, `user/${alice}/inbox`]), [128, 1], 'only the plain filter of one SUBSCRIBE is granted')
  const b = await connectUser(t, node, bob, 'phone')
  const got = nextMessage(a, `user/${alice}/inbox`)
  await sendText(b, conv, 'after-share')
  t.match(await got, { t: 'event', conv_id: conv, client_msg_id: 'after-share' }, 'the connection still delivers')
  t.ok(a.connected, 'still connected')
})

t.test('anonymous clients are refused shared subscriptions too (THREADLINE_OPEN_TOPICS=anonymous)', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: { THREADLINE_OPEN_TOPICS: 'anonymous' } })
  const client = await connectRaw(t, tcpUrl(node), { clientId: 'anon-1' })
  const gone = closed(client)
  let dropped = false
  gone.then(() => { dropped = true }, () => {})
  t.same(await suback(client, ['$share/g/sensors/#', 'sensors/#', '$share/g/#']), [128, 0x01, 128])
  t.notOk(dropped, 'the connection stays up')
})
