// transport 'auto': when MQTT over WebSocket can't connect, the client carries on over
// long-poll with the same events, and returns to MQTT once the WebSocket path works again;
// across both switches no event is lost or repeated.
import t from 'tap'
import type { EventEnvelope } from '../../../clients/sdk/index.js'
import { createConversation, userId } from '../../helpers/fixtures.js'
import { startNode } from '../../helpers/node.js'
import { nextEvent, onlineClient, range, recordEvents, state } from '../../helpers/sdk.js'
import { startTcpProxy } from '../../helpers/tcp-proxy.js'

t.test('WebSocket blocked → long-poll with the same events → MQTT again when it works, nothing lost or repeated', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_TYPING_INTERVAL_MS: '0', THREADLINE_RECEIPT_WINDOW_MS: '0' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await onlineClient(t, node, alice)
  // bob's WebSocket goes through a proxy that refuses connections, as a firewall would;
  // his HTTP goes straight to the server
  const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: node.httpPort })
  proxy.cut()
  const b = await onlineClient(t, node, bob, {
    transport: 'auto',
    mqttUrl: `ws://127.0.0.1:${proxy.port}/mqtt`,
    fallback: { afterFailures: 1, probeMs: 200 },
    typingExpireMs: 60_000
  })
  t.equal(b.transport, 'longpoll', 'the WebSocket failed: long-poll')
  const events = recordEvents(b, 'event')
  const transports = recordEvents(b, 'state')

  let n = 0
  const sendAndSee = async (): Promise<void> => {
    const text = `m${++n}`
    a.send(conv, text)
    await nextEvent(b, 'event', e => e.text === text)
  }
  for (let i = 0; i < 3; i++) await sendAndSee()

  // the same events API over long-poll: typing, receipts, the outbox
  a.typing(conv, true)
  const [typing] = await nextEvent(b, 'typing', x => x.typing)
  t.same(typing, { conv_id: conv, user_id: alice, typing: true }, 'typing arrives over long-poll')
  const mine = b.send(conv, 'sent over long-poll')
  const [sent] = await nextEvent(b, 'outbox', e => e.temp_id === mine.temp_id && e.status === 'sent')
  b.markRead(conv, sent.seq!)
  await nextEvent(a, 'receipts', r => r.markers.some(m => m.user_id === bob && m.read_seq === sent.seq))
  t.pass('a send and a read receipt go out over HTTP')

  // the WebSocket path comes back while alice keeps sending
  proxy.restore()
  const back = state(b, 'online', 'mqtt', 10_000)
  while (b.transport !== 'mqtt') await sendAndSee()
  await back
  for (let i = 0; i < 3; i++) await sendAndSee()
  t.equal(b.transport, 'mqtt', 'back on MQTT')

  // and blocked again: down to long-poll once more, still without a gap
  proxy.cut()
  await state(b, 'online', 'longpoll', 10_000)
  for (let i = 0; i < 3; i++) await sendAndSee()

  const all = events.got.map(([e]: [EventEnvelope]) => e)
  const texts = all.filter(e => e.sender_id === alice).map(e => e.text)
  t.same(texts, range(1, n).map(i => `m${i}`), `alice's ${n} messages, each once, in order, across both switches`)
  t.same(all.map(e => e.seq), range(all[0]!.seq, all.at(-1)!.seq), 'the event seqs have no gap and no repeat')
  t.same(transports.got.filter(([s]) => s.state === 'online').map(([s]) => s.transport), ['mqtt', 'longpoll'], 'online over MQTT, then over long-poll')
})
