// Presence across the nodes of a cluster (two nodes, one PostgreSQL, one Redis): a user is
// online while a device of theirs is connected to any node, each change is published
// once (not once per node), a takeover across nodes is no change, and a visibility
// change made through one node withdraws the grants of viewers on the other.
import t from 'tap'
import type { Threadline } from '../../broker/server.js'
import { PRESENCE_SERVICE } from '../../core/presence/service.js'
import { startCluster } from '../helpers/cluster.js'
import { connectUser } from '../helpers/node.js'
import { published } from '../helpers/access.js'
import { waitFor } from '../helpers/wait.js'
import { newUsers, presenceOf, say, setVisibility, statsOf, watcher, type Watcher } from './watch.js'

const { nodes } = await startCluster(t, 2, { THREADLINE_PRESENCE_GRACE_MS: '600', THREADLINE_PRESENCE_HEARTBEAT_MS: '300' })
const [a, b] = nodes as [Threadline, Threadline]

/** Counts the broker publishes on `topic` made by either node. */
function countPublishes (topic: string): { readonly n: number } {
  const counter = { n: 0 }
  for (const node of nodes) node.broker.on('publish', (packet) => { if (packet.topic === topic) counter.n++ })
  return counter
}

t.test('a device on another node: one state, each change published once', async (t) => {
  const [alice, bob] = await newUsers(a, 'alice', 'bob')
  const publishes = countPublishes(`presence/${alice}`)
  const onA = await watcher(t, a, bob, 'on-a')
  const onB = await watcher(t, b, bob, 'on-b')
  t.equal(await onA.watch(alice), 0)
  t.equal(await onB.watch(alice), 0)

  const phone = await connectUser(t, b, alice, 'phone')
  await onA.next(alice, 'online')
  await onB.next(alice, 'online')
  t.same(await presenceOf(a, bob, [alice]), [{ user_id: alice, state: 'online' }], 'node A knows of the device on B')
  const laptop = await connectUser(t, a, alice, 'laptop')
  await say(phone, alice, 'away')
  await say(laptop, alice, 'away')
  await onA.next(alice, 'away')
  await onB.next(alice, 'away')
  await phone.endAsync()
  await laptop.endAsync()
  await onA.next(alice, 'offline')
  await onB.next(alice, 'offline')
  for (const [name, w] of [['A', onA], ['B', onB]] as Array<[string, Watcher]>) {
    t.same(w.states(alice), ['online', 'away', 'offline'], `the viewer on ${name} saw each change once`)
  }
  t.equal(publishes.n, 3, 'three changes, three publishes in the whole cluster')
})

t.test('a takeover across nodes is no offline/online pair', async (t) => {
  const [alice, bob, marker] = await newUsers(a, 'alice', 'bob', 'marker')
  const viewer = await watcher(t, a, bob)
  await viewer.watch(alice)
  await viewer.watch(marker)
  const first = await connectUser(t, a, alice, 'phone')
  await viewer.next(alice, 'online')
  first.on('error', () => {})
  const closed = new Promise<void>(resolve => first.once('close', () => resolve()))
  const second = await connectUser(t, b, alice, 'phone')
  await closed
  // a grace period later: the marker's offline comes a grace period after it went
  const m = await connectUser(t, a, marker, 'phone')
  await viewer.next(marker, 'online')
  await m.endAsync()
  await viewer.next(marker, 'offline')
  t.same(viewer.states(alice), ['online'], 'no change')
  await second.endAsync()
  await viewer.next(alice, 'offline')
})

t.test('the presence service answers for devices on any node', async (t) => {
  const [alice] = await newUsers(a, 'alice')
  const service = b.services.get(PRESENCE_SERVICE)
  t.equal(await service.isConnected(alice), false)
  const phone = await connectUser(t, a, alice, 'phone')
  await waitFor(() => service.isConnected(alice), 'node B to see the device on A')
  t.same([...await service.connected([alice, 'nobody-at-all'])], [alice])
  await phone.endAsync()
  await waitFor(async () => !await service.isConnected(alice), 'the device to be gone for node B')
  t.same(await presenceOf(b, alice, [alice]), [{ user_id: alice, state: 'online' }], 'still online during the grace period')

  // a device registered through the service (a long-poll queue) counts the same
  const queue = b.services.get(PRESENCE_SERVICE).attach(alice)
  t.equal(await a.services.get(PRESENCE_SERVICE).isConnected(alice), true)
  queue.end()
})

t.test('a visibility change through node A withdraws the grants of viewers on node B', async (t) => {
  const [alice, bob, zed] = await newUsers(a, 'alice', 'bob', 'zed')
  const phone = await connectUser(t, a, alice, 'phone')
  const zedPhone = await connectUser(t, a, zed, 'phone')
  const viewer = await watcher(t, b, bob)
  t.equal(await viewer.watch(alice), 0)
  t.equal(await viewer.watch(zed), 0)
  await viewer.next(alice, 'online')
  await viewer.next(zed, 'online')
  const grantsBefore = statsOf(b).grants
  await setVisibility(a, alice, 'nobody')
  await waitFor(() => statsOf(b).grants === grantsBefore - 1, 'node B to withdraw the grant')

  const since = viewer.states(alice).length
  const away = published(a, `presence/${alice}`)
  await say(phone, alice, 'away')
  await away
  await say(zedPhone, zed, 'away')
  await viewer.next(zed, 'away')
  t.same(viewer.states(alice).slice(since), [], 'nothing more about alice on node B')
  t.equal(await viewer.watch(alice), 128)
})
