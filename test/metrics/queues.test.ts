// Figures kept by other parts that /metrics reads or is told of: offline queue drops,
// coalesced receipts, pushes, long-poll queues.
import t from 'tap'
import { collect, connectUser, startNode } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { scrape, untilScrape } from '../helpers/metrics.js'
import { LongPollClient } from '../helpers/longpoll.js'
import { pushCredentials, startFakeApns } from '../helpers/push-fakes.js'
import { createDirect, iosToken, registerDevice, startPushNode } from '../helpers/push.js'

t.test('offline drops count the packets an away device\'s queue loses past its cap', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: { THREADLINE_OFFLINE_QUEUE_MAX: '2' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const sender = await connectUser(t, node, alice, 'phone')
  const phone = await connectUser(t, node, bob, 'phone', { clean: false })
  await phone.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  await phone.endAsync()
  // online all along: once it has every event, every enqueue for the phone is done too
  const tablet = await connectUser(t, node, bob, 'tablet')
  await tablet.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  t.equal((await scrape(node)).value('threadline_offline_dropped_total'), 0)
  const arrived = collect(tablet, 5)
  for (let i = 0; i < 5; i++) await sender.publishAsync(`conv/${conv}/send`, text(`o-${i}`, `m${i}`), { qos: 1 })
  await arrived
  const s = await untilScrape(node, s => s.value('threadline_offline_dropped_total') >= 3, 'three drops')
  t.equal(s.value('threadline_offline_dropped_total'), 3, 'five queued, two kept')
  t.equal(s.value('threadline_sessions', { state: 'away' }), 1, 'the phone\'s session is away')
})

t.test('receipts merged before they reach the store are counted as coalesced', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: { THREADLINE_RECEIPT_WINDOW_MS: '300' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  const b = await connectUser(t, node, bob, 'phone')
  await b.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  const arrived = collect(b, 3)
  for (let i = 0; i < 3; i++) await a.publishAsync(`conv/${conv}/send`, text(`r-${i}`, `m${i}`), { qos: 1 })
  await arrived
  // three receipts of one member in one window: one entry, two merged into it
  for (const seq of [1, 2, 3]) await b.publishAsync(`conv/${conv}/read`, JSON.stringify({ status: 'read', seq }), { qos: 1 })
  const s = await untilScrape(node, s => s.value('threadline_receipts_coalesced_total') >= 2, 'two receipts coalesced')
  t.equal(s.value('threadline_receipts_coalesced_total'), 2)
})

t.test('long-poll queues and the polls held are gauges of the node', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  const ann = userId('ann')
  const s0 = await scrape(node)
  t.equal(s0.value('threadline_longpoll_queues'), 0)
  const client = new LongPollClient(node, ann)
  await client.open()
  const abort = new AbortController()
  const held = client.request(30, '', abort.signal).catch(() => null)
  const s1 = await untilScrape(node, s => s.value('threadline_longpoll_held') === 1, 'the poll held')
  t.equal(s1.value('threadline_longpoll_queues'), 1, 'one queue')
  abort.abort()
  await held
  await untilScrape(node, s => s.value('threadline_longpoll_held') === 0, 'the poll let go')
})

t.test('pushes are counted by provider and result', async (t) => {
  const creds = await pushCredentials(t)
  const apns = await startFakeApns(t, creds.apns)
  apns.answer = (push) => push.token === iosToken(2) ? { status: 410, reason: 'Unregistered' } : { status: 200 }
  const { node } = await startPushNode(t, creds, { apns, fcm: null }, { env: { THREADLINE_PUSH_WINDOW_MS: '100' } })
  const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
  const toBob = await createDirect(t, node, alice, bob)
  const toCarol = await createDirect(t, node, alice, carol)
  await registerDevice(t, node, bob, 'iphone', 'ios', iosToken(1))
  await registerDevice(t, node, carol, 'iphone', 'ios', iosToken(2))
  const a = await connectUser(t, node, alice, 'phone')
  await a.publishAsync(`conv/${toBob}/send`, text('p-1', 'for bob'), { qos: 1 })
  await a.publishAsync(`conv/${toCarol}/send`, text('p-2', 'for carol'), { qos: 1 })
  const s = await untilScrape(node, s => s.value('threadline_pushes_total', { provider: 'apns', result: 'sent' }) === 1 &&
    s.value('threadline_pushes_total', { provider: 'apns', result: 'unregistered' }) === 1, 'one push sent, one token gone')
  t.equal(s.value('threadline_pushes_total', { provider: 'apns', result: 'failed' }), 0)
  t.notOk(s.series.some(f => f.metrics.some(m => m.labels?.provider === 'fcm')), 'FCM is not configured: no series for it')
})
