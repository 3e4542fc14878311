// CONNECT attempts per client address (before the token is looked at) and per user (once
// it verified): over either, CONNACK 3 (server unavailable) and the connection closes.
import t from 'tap'
import { setTimeout as delay } from 'node:timers/promises'
import { connackRefusal, tcpUrl } from '../helpers/access.js'
import { connectUser, startNode, token } from '../helpers/node.js'
import { userId } from '../helpers/fixtures.js'

t.test('per address: every attempt counts, a refused token too; over the burst CONNACK 3', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_CONNECT_IP_RATE: '1', THREADLINE_CONNECT_IP_BURST: '3' } })
  const limited: string[] = []
  node.telemetry.on('limited', e => limited.push(e.limit))
  const alice = userId('alice')
  t.equal(await connackRefusal(t, tcpUrl(node), { clientId: `${alice}:x`, username: alice, password: 'not-a-token' }), 4, 'a bad token: refused by auth, but counted')
  await connectUser(t, node, alice, 'phone')
  await connectUser(t, node, alice, 'web')
  t.equal(await connackRefusal(t, tcpUrl(node), { clientId: `${alice}:tablet`, username: alice, password: token(node, alice) }), 3, 'the fourth attempt from 127.0.0.1: CONNACK 3')
  t.same(limited, ['connect_ip'])
  // one interval of the configured rate (1/s)
  await delay(1000)
  await connectUser(t, node, alice, 'tablet')
  t.pass('accepted again once the bucket refilled')
})

t.test('per user: counted only once the token verified, so nobody else can spend a user\'s budget', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_CONNECT_USER_RATE: '1', THREADLINE_CONNECT_USER_BURST: '2' } })
  const limited: string[] = []
  node.telemetry.on('limited', e => limited.push(e.limit))
  const [alice, bob] = [userId('alice'), userId('bob')]
  for (let i = 0; i < 5; i++) {
    t.equal(await connackRefusal(t, tcpUrl(node), { clientId: `${alice}:x${i}`, username: alice, password: 'forged' }), 4)
  }
  await connectUser(t, node, alice, 'phone')
  await connectUser(t, node, alice, 'web')
  t.pass('five refused attempts spent none of alice\'s budget')
  t.equal(await connackRefusal(t, tcpUrl(node), { clientId: `${alice}:tablet`, username: alice, password: token(node, alice) }), 3, 'her third connection: CONNACK 3')
  await connectUser(t, node, bob, 'phone')
  t.pass('bob has a budget of his own')
  t.same(limited, ['connect_user'])
})
