// "Expired tokens are refused at CONNECT; a live session whose token expires is
// disconnected" (DESIGN.md §2).
import t from 'tap'
import { startNode, connectUser, token } from '../helpers/node.js'
import { closed, connackRefusal, suback, tcpUrl } from '../helpers/access.js'

const node = await startNode(t)

t.test('a live session is disconnected when its token expires', async (t) => {
  const ttlToken = token(node, 'alice', { ttlS: 2 })
  const exp = (JSON.parse(Buffer.from(ttlToken.split('.')[1] as string, 'base64url').toString()) as { exp: number }).exp * 1000
  const client = await connectUser(t, node, 'alice', 'phone', { password: ttlToken })
  t.same(await suback(client, 'user/alice/inbox'), [1], 'the session works while the token is valid')
  await closed(client)
  t.ok(Date.now() >= exp, 'closed at expiry, not before')
  t.notOk(client.connected)

  const code = await connackRefusal(t, tcpUrl(node), { clientId: 'alice:phone', username: 'alice', password: ttlToken })
  t.ok(code === 4 || code === 5, `reconnecting with the expired token: CONNACK ${code}`)
})

t.test('another device of the same user with a longer-lived token stays connected', async (t) => {
  const short = await connectUser(t, node, 'bob', 'phone', { password: token(node, 'bob', { ttlS: 2 }) })
  const long = await connectUser(t, node, 'bob', 'laptop')
  let longDropped = false
  long.on('close', () => { longDropped = true })
  await closed(short)
  t.same(await suback(long, 'user/bob/inbox'), [1], 'the laptop still answers after the phone was cut')
  t.notOk(longDropped)
})
