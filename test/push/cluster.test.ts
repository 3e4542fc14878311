// Push in a cluster (DESIGN.md §4, §7): a member online on another node is online, and each
// notification is pushed by exactly one node: the one whose send service committed the
// event (eventsCommitted runs there only). "Online" is the presence plugin's service,
// which keeps every node's devices in Redis.
import t from 'tap'
import type { Threadline } from '../../broker/server.js'
import { startCluster } from '../helpers/cluster.js'
import { connectUser } from '../helpers/node.js'
import { userId } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/wait.js'
import { pushCredentials, pushEnv, startFakeApns } from '../helpers/push-fakes.js'
import { createGroup, iosToken, pushNodeOf, PUSH_TEST_PLUGINS, registerDevice, untilOnline } from '../helpers/push.js'

async function send (t: Parameters<typeof connectUser>[0], node: Threadline, from: string, convId: string, id: string): Promise<void> {
  const client = await connectUser(t, node, from, `phone-${id}`)
  await client.publishAsync(`conv/${convId}/send`, JSON.stringify({ client_msg_id: id, type: 'text', text: id }), { qos: 1 })
}

t.test('a member online only on another node is not pushed; each notification comes from one node', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  const { nodes } = await startCluster(t, 2, { ...pushEnv(creds, apns, null), THREADLINE_PUSH_WINDOW_MS: '200' }, PUSH_TEST_PLUGINS)
  const [a, b] = nodes as [Threadline, Threadline]
  const [alice, bob, dan, erin] = [userId('alice'), userId('bob'), userId('dan'), userId('erin')]
  const convId = await createGroup(t, a, alice, 'Two nodes', [bob, dan])
  const other = await createGroup(t, b, alice, 'Marker', [erin])
  await registerDevice(t, a, bob, 'iphone', 'ios', iosToken(1))
  await registerDevice(t, b, dan, 'iphone', 'ios', iosToken(2))
  await registerDevice(t, b, erin, 'iphone', 'ios', iosToken(3))

  // bob is connected to node b only; alice sends through node a
  await connectUser(t, b, bob, 'phone')
  await untilOnline(a, bob)
  await send(t, a, alice, convId, 'm1')
  await apns.until(() => apns.requests.some(r => r.token === iosToken(2)), 'dan\'s push')

  // node b closes a window of its own after a's: had it anything for dan or bob, it would
  // have gone out before erin's
  await send(t, b, alice, other, 'marker')
  await apns.until(() => apns.requests.some(r => r.token === iosToken(3)), 'erin\'s push from node b')
  t.same(apns.requests.filter(r => r.token !== iosToken(3)).map(r => r.token), [iosToken(2)], 'dan pushed once, bob (online on node b) not at all')
  await waitFor(() => pushNodeOf(b).push.counters().apns.sent === 1, 'node b to count erin\'s push')
  t.equal(pushNodeOf(a).push.counters().apns.sent, 1, 'node a pushed the message it committed')
  t.equal(pushNodeOf(b).push.counters().apns.sent, 1, 'node b pushed only its own')
})
