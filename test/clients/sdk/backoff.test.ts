// Reconnect delays: exponential with full jitter, bounded; and a client that loses its
// connection comes back by itself within those bounds.
import t from 'tap'
import { backoffDelay } from '../../../clients/sdk/index.js'
import { startNode } from '../../helpers/node.js'
import { startTcpProxy } from '../../helpers/tcp-proxy.js'
import { onlineClient, recordEvents, state } from '../../helpers/sdk.js'
import { userId } from '../../helpers/fixtures.js'

t.test('each delay is uniform in [0, min(maxMs, minMs·2^attempt)]: full jitter under a doubling, bounded ceiling', async (t) => {
  const opts = { minMs: 100, maxMs: 2000 }
  const ceilings = [100, 200, 400, 800, 1600, 2000, 2000]
  for (const [attempt, ceiling] of ceilings.entries()) {
    t.equal(backoffDelay(attempt, { ...opts, random: () => 0 }), 0, `attempt ${attempt}: the lowest draw waits nothing`)
    t.equal(backoffDelay(attempt, { ...opts, random: () => 0.5 }), ceiling / 2, `attempt ${attempt}: the middle draw waits half the ceiling`)
    t.equal(backoffDelay(attempt, { ...opts, random: () => 0.999999 }), ceiling - 1, `attempt ${attempt}: the highest draw stays below the ceiling ${ceiling}`)
  }
  t.equal(backoffDelay(10_000, { ...opts, random: () => 0.999999 }), 1999, 'a huge attempt count stays at maxMs (no overflow to Infinity or NaN)')
  t.equal(backoffDelay(3, { minMs: 100, maxMs: 2000, random: () => 7 }), 800, 'a random source out of range is clamped, never past the ceiling')
  t.equal(backoffDelay(3, { minMs: 100, maxMs: 2000, random: () => -1 }), 0, 'nor below zero')

  // with the real random source: spread over the whole range, never past it
  const draws = Array.from({ length: 2000 }, () => backoffDelay(4, opts))
  t.ok(draws.every(d => Number.isInteger(d) && d >= 0 && d < 1600), 'every draw of attempt 4 lies in [0, 1600)')
  t.ok(Math.min(...draws) < 160 && Math.max(...draws) > 1440, 'the draws cover the range (full jitter, not a fixed delay)')
  t.equal(backoffDelay(0, { random: () => 0.999999 }), 499, 'defaults: the first ceiling is 500 ms')
  t.equal(backoffDelay(30, { random: () => 0.999999 }), 29_999, 'and the largest 30 s')
})

t.test('a client whose connection drops reconnects by itself, each attempt within the backoff bounds', async (t) => {
  const node = await startNode(t)
  const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: node.mqttPort })
  const maxMs = 300
  const client = await onlineClient(t, node, userId('alice'), {
    transport: 'mqtt',
    mqttUrl: `mqtt://127.0.0.1:${proxy.port}`,
    backoff: { minMs: 40, maxMs }
  })
  t.equal(client.transport, 'mqtt')

  const states = recordEvents(client, 'state')
  const attemptsAt: number[] = []
  client.on('state', (c) => { if (c.state === 'connecting') attemptsAt.push(performance.now()) })
  proxy.cut()
  await state(client, 'offline')
  // let it fail a few times against the cut proxy: each attempt is refused at once, so the
  // gaps between attempts are the backoff delays
  await states.until(12)
  proxy.restore()
  await state(client, 'online', 'mqtt')

  t.ok(attemptsAt.length >= 5, `it kept trying (${attemptsAt.length} attempts)`)
  const gaps = attemptsAt.slice(1).map((at, i) => at - attemptsAt[i]!)
  // a refused attempt takes a few ms; the rest of each gap is the delay, at most maxMs
  t.ok(gaps.every(g => g < maxMs + 150), `no gap between attempts is past maxMs (${gaps.map(Math.round).join(', ')} ms)`)
  t.equal(client.state, 'online', 'and is online again once the path is back')
})
