// Long-poll clients that behave as no good client would (DESIGN.md §4 "Isolated"): one
// that never reads its answers costs other clients nothing; hundreds of polls held on one
// queue all answer on one event; oversized query strings and bodies are refused (4xx)
// and the node stays up. Raw sockets where fetch would be too polite.
import { once } from 'node:events'
import type net from 'node:net'
import t from 'tap'
import { createConversation, userId } from '../helpers/fixtures.js'
import { UNLIMITED_SENDS, collect, connectUser, startNode } from '../helpers/node.js'
import { http, LongPollClient, untilStats } from '../helpers/longpoll.js'
import { openSocket } from '../helpers/raw-mqtt.js'
import { waitFor, withTimeout } from '../helpers/wait.js'

// hostile volumes on purpose: no rate limit shapes them (test/limits/ tests those)
const node = await startNode(t, { env: { ...UNLIMITED_SENDS, THREADLINE_POLL_RATE: '0' } })

/** 4000 code points of three bytes: a text at its limit, 12 KB on the wire. */
const big = (i: number): string => JSON.stringify({ client_msg_id: `big-${i}`, type: 'text', text: `${i} `.padEnd(4000, '€') })

function pollRequest (lp: LongPollClient, query: string): string {
  return `GET /v1/events?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${lp.bearer}\r\n\r\n`
}

/** Writes `request` on a socket of its own and reads the answer until the server closes or answers in full; resolves with the status. */
async function rawStatus (port: number, request: string): Promise<number> {
  const socket = await openSocket(port)
  let got = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { got += chunk })
  // the server may answer and close before the whole request is written: EPIPE is no failure here
  socket.on('error', () => {})
  socket.end(request)
  await withTimeout(once(socket, 'close'), 'the server to answer and close')
  const status = /^HTTP\/1\.1 (\d{3}) /.exec(got)
  if (status === null) throw new Error(`no HTTP answer: ${JSON.stringify(got.slice(0, 200))}`)
  return Number(status[1])
}

t.test('a client that never reads its answers while events pile up holds up no other client', async (t) => {
  const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
  const conv = await createConversation(node, [alice, bob])
  const other = await createConversation(node, [alice, carol])
  const a = await connectUser(t, node, alice, 'phone')
  const phone = await connectUser(t, node, bob, 'phone')
  await phone.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
  const stuck = new LongPollClient(node, bob)
  await stuck.open({ device: 'stuck' })
  const browser = new LongPollClient(node, bob)
  await browser.open({ device: 'browser' })
  const carols = new LongPollClient(node, carol)
  await carols.open()
  const send = async (from: number, to: number): Promise<void> => {
    for (let i = from; i <= to; i++) await a.publishAsync(`conv/${conv}/send`, big(i), { qos: 1 })
  }

  await send(1, 100)
  // ten polls at once, each answering the whole backlog (1.2 MB), to a socket nobody reads
  const accepted: net.Socket[] = []
  const onConnection = (s: net.Socket): void => { accepted.push(s) }
  node.app.server.on('connection', onConnection)
  const socket = await openSocket(node.httpPort)
  let server: net.Socket | undefined
  await waitFor(() => (server = accepted.find(s => s.remotePort === socket.localPort)) !== undefined, 'the node to accept the stuck client')
  node.app.server.off('connection', onConnection)
  socket.pause()
  t.teardown(() => socket.destroy())
  socket.write(pollRequest(stuck, `queue_id=${stuck.queueId}&last_event_id=0&timeout=30`).repeat(10))
  await waitFor(() => server?.writableNeedDrain === true, 'the answers to the stuck client to back up at the node')

  const started = performance.now()
  const inbox = collect(phone, 100, (_topic, m) => String(m.client_msg_id).startsWith('big-') && Number(m.seq) > 100, 30_000)
  const polled = browser.collect(200, 30_000)
  await send(101, 200)
  for (let i = 1; i <= 10; i++) await a.publishAsync(`conv/${other}/send`, JSON.stringify({ client_msg_id: `c${i}`, type: 'text', text: `to carol ${i}` }), { qos: 1 })
  const sendMs = performance.now() - started
  t.same((await polled).map(e => e.seq), Array.from({ length: 200 }, (_v, i) => i + 1), 'bob\'s other device polled every event, in order')
  t.equal((await inbox).length, 100, 'bob\'s phone got every new event over MQTT')
  t.same((await carols.collect(10)).map(e => e.text), Array.from({ length: 10 }, (_v, i) => `to carol ${i + 1}`), 'another user\'s queue got hers')
  t.ok(sendMs < 20_000, `110 sends took ${sendMs.toFixed(0)} ms beside the stuck client`)
  t.ok(server?.writableNeedDrain, 'the stuck client was still not reading')

  socket.destroy()
  await untilStats(node, s => s.held === 0, 'nothing held for the stuck client once it went')
  t.equal((await browser.request(0)).status, 200, 'the node goes on')
})

t.test('200 polls held on one queue all answer on one event', async (t) => {
  const HELD = 200
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  const lp = new LongPollClient(node, bob)
  await lp.open()
  const polls = Array.from({ length: HELD }, () => lp.request(60))
  await untilStats(node, s => s.held === HELD, `${HELD} held polls`)
  const sent = performance.now()
  await a.publishAsync(`conv/${conv}/send`, JSON.stringify({ client_msg_id: 'one', type: 'text', text: 'for everyone' }), { qos: 1 })
  const answers = await withTimeout(Promise.all(polls), `the ${HELD} polls to answer`)
  const ms = performance.now() - sent
  t.same(answers.map(r => r.status), answers.map(() => 200), 'every poll answered 200')
  t.ok(answers.every(r => r.body.events.length === 1 && r.body.events[0]?.event_id === 1 && r.body.events[0]?.text === 'for everyone'),
    'each with the one event')
  t.ok(ms < 5000, `all ${HELD} answered within ${ms.toFixed(0)} ms of the send`)
  await untilStats(node, s => s.held === 0, 'no poll held after')
})

t.test('oversized query strings and bodies: 4xx, and the node stays up', async (t) => {
  const bob = userId('bob')
  const lp = new LongPollClient(node, bob)
  await lp.open()
  const q = lp.queueId
  t.equal(await rawStatus(node.httpPort, pollRequest(lp, `queue_id=${q}&last_event_id=${'9'.repeat(100_000)}`)), 431,
    'a 100 KB last_event_id: the request line is too long (431)')
  t.equal(await rawStatus(node.httpPort, pollRequest(lp, `queue_id=${q}&last_event_id=0&${'x'.repeat(100_000)}=1`)), 431,
    'a 100 KB parameter of no meaning: 431')

  const long = await http<{ code: string, message: string }>(node, lp.bearer, 'GET', `/v1/events?queue_id=${q}&last_event_id=${'9'.repeat(8000)}&timeout=0`)
  t.match(long, { status: 400, body: { code: 'bad_request', message: /last_event_id/ } }, 'an 8 KB last_event_id within the header limit: 400')
  t.ok(long.body.message.length < 500, 'the message does not echo the 8 KB back')
  const longId = await http(node, lp.bearer, 'GET', `/v1/events?queue_id=${'A'.repeat(8000)}&last_event_id=0&timeout=0`)
  t.match(longId, { status: 400, body: { code: 'bad_request', message: /queue_id/ } }, 'an 8 KB queue_id: 400')
  const many = await http(node, lp.bearer, 'GET', `/v1/events?queue_id=${q}&last_event_id=0&timeout=0&${Array.from({ length: 1000 }, (_v, i) => `p${i}=${i}`).join('&')}`)
  t.equal(many.status, 200, 'a thousand unknown parameters are ignored')
  const body = await http(node, lp.bearer, 'POST', '/v1/events/queue', { device_id: 'd', user_ids: ['x'.repeat(1_000_000)] })
  t.match(body, { status: 413, body: { code: 'too_large' } }, 'a 1 MB body: 413')

  t.match(await lp.poll(0), [], 'a good poll still works')
})
