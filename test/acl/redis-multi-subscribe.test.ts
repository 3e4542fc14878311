// A clean=false SUBSCRIBE of several granted topics is answered with Redis sessions
// (aedes-persistence's broadcast waiters collided: no SUBACK, ever).
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { startNode, connectUser } from '../helpers/node.js'
import { createConversation, storedTopics, suback } from '../helpers/access.js'

const user = `multi-${randomBytes(3).toString('hex')}`

t.test('a persistent session subscribing several topics in one packet gets its SUBACK and keeps them', async (t) => {
  const node = await startNode(t, { redis: true })
  const convId = await createConversation(node, [user, 'other'])
  const phone = await connectUser(t, node, user, 'phone', { clean: false })
  const topics = [`user/${user}/inbox`, `conv/${convId}/events`, `conv/${convId}/typing`]
  t.same(await suback(phone, [...topics, 'user/other/inbox']), [1, 1, 1, 128])
  t.same(await storedTopics(node, `${user}:phone`), [...topics].sort())
})
