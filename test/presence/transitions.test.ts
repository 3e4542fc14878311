// Presence on one node (DESIGN.md §3): online while any device is connected, away when
// every device said so or was silent for the idle time, offline with last_seen once the
// last device went (clean disconnect, keepalive timeout), published retained on
// presence/<u> only on changes; a takeover or a reconnect within the grace period is no
// offline/online pair. Real MQTT.js clients, real PostgreSQL.
import t, { type Test } from 'tap'
import { startNode, connectUser, token } from '../helpers/node.js'
import { userId } from '../helpers/fixtures.js'
import { connectPacket, openSocket, readBytes } from '../helpers/raw-mqtt.js'
import { waitFor } from '../helpers/wait.js'
import { createDatabase } from '../helpers/pg-database.js'
import { openStore } from '../../broker/store/index.js'
import { createLogger } from '../../broker/logger.js'
import { newUsers, presenceOf, say, statsOf, storedLastSeen, watcher, type Watcher } from './watch.js'

const GRACE_MS = 800
const node = await startNode(t, { env: { THREADLINE_PRESENCE_GRACE_MS: String(GRACE_MS) } })

/** A fresh user, alice, whose presence a fresh viewer watches. */
async function watched (t: Test): Promise<{ alice: string, bob: string, viewer: Watcher }> {
  const [alice, bob] = await newUsers(node, 'alice', 'bob')
  const viewer = await watcher(t, node, bob)
  t.equal(await viewer.watch(alice), 0)
  return { alice, bob, viewer }
}

t.test('online when a device connects; a later subscriber gets it retained', async (t) => {
  const [alice, bob] = await newUsers(node, 'alice', 'bob')
  const early = await watcher(t, node, bob, 'early')
  t.equal(await early.watch(alice), 0)
  await connectUser(t, node, alice, 'phone')
  t.same(await early.next(alice), { user_id: alice, state: 'online' })

  const late = await watcher(t, node, bob, 'late')
  t.equal(await late.watch(alice), 0)
  t.same(await late.next(alice), { user_id: alice, state: 'online' }, 'the retained state')
  t.same(await presenceOf(node, bob, [alice]), [{ user_id: alice, state: 'online' }], 'GET /v1/presence agrees')
})

t.test('away when every device said away, online again when one is active', async (t) => {
  const { alice, viewer } = await watched(t)
  const phone = await connectUser(t, node, alice, 'phone')
  const laptop = await connectUser(t, node, alice, 'laptop')
  await viewer.next(alice, 'online')
  await say(phone, alice, 'away')
  await say(laptop, alice, 'away')
  t.same(await viewer.next(alice), { user_id: alice, state: 'away' }, 'away only once both said so')
  t.same(await presenceOf(node, alice, [alice]), [{ user_id: alice, state: 'away' }])
  await say(laptop, alice, 'away') // said again: no change, nothing published
  await say(phone, alice, 'active')
  t.same(await viewer.next(alice), { user_id: alice, state: 'online' })
  await laptop.endAsync()
  await phone.endAsync()
  await viewer.next(alice, 'offline')
  t.same(viewer.states(alice), ['online', 'away', 'online', 'offline'], 'one message per change')
})

t.test('offline with last_seen after the grace period; last_seen is stored', async (t) => {
  const { alice, bob, viewer } = await watched(t)
  const phone = await connectUser(t, node, alice, 'phone')
  await viewer.next(alice, 'online')
  t.equal(await storedLastSeen(node, alice), null, 'nothing stored while online')
  const before = Date.now()
  await phone.endAsync()
  const after = Date.now()
  const offline = await viewer.next(alice)
  const gap = Date.now() - before
  t.equal(offline.state, 'offline')
  t.ok(gap >= GRACE_MS, `offline came ${gap} ms after the disconnect: not before the grace period`)
  const seen = new Date(offline.last_seen as string).getTime()
  t.ok(seen >= before - 5 && seen <= after + 50, 'last_seen is when the device went, not when the grace period ended')
  await waitFor(async () => await storedLastSeen(node, alice) === seen, 'users.last_seen to be written')
  t.same(await presenceOf(node, bob, [alice]), [{ user_id: alice, state: 'offline', last_seen: offline.last_seen }])
})

/**
 * Waits out a grace period with an event: a marker user the viewer watches connects and
 * goes now, and its offline comes one grace period later. Any offline owed to a departure
 * before this call has been published by then (grace timers fire in order).
 */
async function afterGracePeriod (viewer: Watcher): Promise<void> {
  const [marker] = await newUsers(node, 'marker')
  await viewer.watch(marker)
  const c = await connectUser(t, node, marker, 'phone')
  await viewer.next(marker, 'online')
  await c.endAsync()
  await viewer.next(marker, 'offline')
}

t.test('a second device keeps the user online', async (t) => {
  const { alice, viewer } = await watched(t)
  const phone = await connectUser(t, node, alice, 'phone')
  const tablet = await connectUser(t, node, alice, 'tablet')
  await viewer.next(alice, 'online')
  await phone.endAsync()
  await afterGracePeriod(viewer)
  t.same(viewer.states(alice), ['online'], 'still online a grace period after the phone went')
  await tablet.endAsync()
  await viewer.next(alice, 'offline')
  t.same(viewer.states(alice), ['online', 'offline'])
})

t.test('a takeover (the same clientId connecting again) is no offline/online pair', async (t) => {
  const { alice, viewer } = await watched(t)
  const first = await connectUser(t, node, alice, 'phone')
  await viewer.next(alice, 'online')
  const closed = new Promise<void>(resolve => first.once('close', () => resolve()))
  const second = await connectUser(t, node, alice, 'phone')
  await closed
  await afterGracePeriod(viewer)
  t.same(viewer.states(alice), ['online'], 'the takeover changed nothing, a grace period later too')
  await second.endAsync()
  await viewer.next(alice, 'offline')
  t.same(viewer.states(alice), ['online', 'offline'])
})

t.test('a reconnect within the grace period is no offline/online pair', async (t) => {
  const { alice, viewer } = await watched(t)
  const phone = await connectUser(t, node, alice, 'phone')
  await viewer.next(alice, 'online')
  phone.stream.destroy() // the network dropped
  await waitFor(() => statsOf(node).graceTimers > 0, 'the grace period to start')
  const again = await connectUser(t, node, alice, 'phone')
  await waitFor(() => statsOf(node).graceTimers === 0, 'the grace period to be called off')
  const before = Date.now()
  await again.endAsync()
  const offline = await viewer.next(alice, 'offline')
  t.same(viewer.states(alice), ['online', 'offline'])
  t.ok(new Date(offline.last_seen as string).getTime() >= before - 5, 'last seen at the second disconnect')
})

t.test('keepalive timeout: offline, last seen when the connection was given up', async (t) => {
  const { alice, viewer } = await watched(t)
  const socket = await openSocket(node.mqttPort)
  t.teardown(() => socket.destroy())
  const connectedAt = Date.now()
  socket.write(connectPacket({ clientId: `${alice}:watch`, clean: true, username: alice, password: token(node, alice), keepaliveS: 1 }))
  t.same([...await readBytes(socket, 4)], [0x20, 2, 0, 0], 'CONNACK 0')
  await viewer.next(alice, 'online')
  // the device says nothing more: dropped after 1.5 × its keepalive
  const offline = await viewer.next(alice, 'offline')
  const seen = new Date(offline.last_seen as string).getTime()
  t.ok(seen - connectedAt >= 1400, `last seen ${seen - connectedAt} ms after connecting: when the keepalive ran out`)
  t.same(viewer.states(alice), ['online', 'offline'])
})

t.test('idle: nothing heard for THREADLINE_PRESENCE_IDLE_S is away; a publish or subscribe is online again', async (t) => {
  const idle = await startNode(t, { store: 'pglite', env: { THREADLINE_PRESENCE_IDLE_S: '1', THREADLINE_PRESENCE_GRACE_MS: '0' } })
  const [alice, bob] = await newUsers(idle, 'alice', 'bob')
  const viewer = await watcher(t, idle, bob)
  await viewer.watch(alice)
  const phone = await connectUser(t, idle, alice, 'phone')
  await viewer.next(alice, 'online')
  // keepalive PINGREQs are not "heard": only what the user's app does is
  const away = await viewer.next(alice, 'away', 5000)
  t.same(away, { user_id: alice, state: 'away' })
  await phone.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  t.same(await viewer.next(alice), { user_id: alice, state: 'online' }, 'a SUBSCRIBE is heard')
  await viewer.next(alice, 'away', 5000)
  await say(phone, alice, 'active')
  t.same(await viewer.next(alice), { user_id: alice, state: 'online' }, 'a PUBLISH is heard')
  await phone.endAsync()
  const offline = await viewer.next(alice)
  t.equal(offline.state, 'offline', 'grace 0: offline at once')
  t.type(offline.last_seen, 'string')
})

t.test('the users who went are forgotten: nothing of them stays in memory', async (t) => {
  await waitFor(() => statsOf(node).graceTimers === 0, 'every grace period to end')
  const users = userId('many')
  const clients = []
  for (let i = 0; i < 20; i++) clients.push(await connectUser(t, node, `${users}-${i}`, 'phone'))
  t.equal(statsOf(node).devices >= 20, true)
  for (const c of clients) await c.endAsync()
  await waitFor(() => {
    const s = statsOf(node)
    return s.users === 0 && s.devices === 0 && s.graceTimers === 0
  }, 'the tracker to be empty once the grace periods ended')
  t.pass('empty')
})

t.test('a node shutting down records last_seen for its users (a single node ends their grace periods itself)', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const single = await startNode(t, { databaseUrl: db.url, env: { THREADLINE_PRESENCE_GRACE_MS: '60000' } })
  const [alice] = await newUsers(single, 'alice')
  await connectUser(t, single, alice, 'phone')
  await waitFor(() => statsOf(single).devices === 1, 'the device to be registered')
  const before = Date.now()
  await single.close()
  const reader = await openStore({ databaseUrl: db.url, dataDir: '/nonexistent' }, createLogger('silent'))
  t.teardown(() => reader.close())
  const rows = await reader.query<{ last_seen: Date | null }>('SELECT last_seen FROM users WHERE id = $1', [alice])
  const seen = rows[0]?.last_seen?.getTime() ?? 0
  t.ok(seen >= before && seen <= Date.now(), 'last seen at the shutdown, without waiting out the grace period')
})
