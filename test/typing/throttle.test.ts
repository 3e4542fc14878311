// The typing rate rule (plugins/typing/throttle.ts) on a clock of the test's own, and the
// relay's cap on publishes in flight (a hung Redis).
import t from 'tap'
import { TypingThrottle } from '../../plugins/typing/throttle.js'
import { MAX_IN_FLIGHT, TypingRelay } from '../../plugins/typing/relay.js'
import { createLogger } from '../../broker/logger.js'

function clocked (intervalMs: number, maxPairs?: number): { throttle: TypingThrottle, at: (ms: number) => void } {
  let now = 0
  return { throttle: new TypingThrottle(intervalMs, maxPairs, () => now), at: (ms) => { now = ms } }
}

t.test('one start per interval; a stop after a forwarded start always passes; a repeated stop does not', async (t) => {
  const { throttle, at } = clocked(1000)
  const pass = (ms: number, typing: boolean): boolean => { at(ms); return throttle.pass('u', 'c', typing) }
  t.equal(pass(0, true), true, 'the first start')
  t.equal(pass(300, true), false, 'a refresh within the interval')
  t.equal(pass(400, false), true, 'the stop')
  t.equal(pass(450, false), false, 'the stop again')
  t.equal(pass(500, true), false, 'a new start within the interval of the last forwarded one')
  t.equal(pass(700, false), false, 'the stop of a dropped start: the last forwarded state is already "stopped"')
  t.equal(pass(1000, true), true, 'a start one interval after the last forwarded start')
  t.equal(pass(1500, true), false)
  t.equal(pass(2000, true), true, 'refreshes every interval pass')
  t.equal(pass(2001, false), true)
})

t.test('pairs are independent: per user and per conversation', async (t) => {
  const { throttle } = clocked(1000)
  t.equal(throttle.pass('u', 'c1', true), true)
  t.equal(throttle.pass('u', 'c2', true), true)
  t.equal(throttle.pass('v', 'c1', true), true)
  t.equal(throttle.pass('u', 'c1', true), false)
})

t.test('a toggling client gets at most two signals per interval through', async (t) => {
  const { throttle, at } = clocked(1000)
  let forwarded = 0
  for (let ms = 0; ms < 10_000; ms += 10) {
    at(ms)
    if (throttle.pass('u', 'c', (ms / 10) % 2 === 0)) forwarded++
  }
  t.ok(forwarded <= 20, `${forwarded} forwarded in 10 intervals`)
  t.ok(forwarded >= 10, 'and at least a start per interval')
})

t.test('memory: pairs are forgotten an interval after their last forward, and never exceed maxPairs', async (t) => {
  const { throttle, at } = clocked(1000, 500)
  for (let i = 0; i < 2000; i++) throttle.pass(`u${i}`, 'c', true)
  t.equal(throttle.size, 500, 'capped: the oldest pairs go first')
  t.equal(throttle.pass('u1999', 'c', true), false, 'the newest are still remembered')
  t.equal(throttle.pass('u0', 'c', true), true, 'a forgotten pair passes again, which is harmless')
  at(1000)
  throttle.pass('late', 'c', false)
  t.equal(throttle.size, 1, 'everything older than an interval was dropped at the next signal')
})

t.test('an interval of 0 forwards everything and remembers nothing', async (t) => {
  const { throttle } = clocked(0)
  for (let i = 0; i < 5; i++) t.equal(throttle.pass('u', 'c', i % 2 === 0), true)
  t.equal(throttle.size, 0)
})

t.test('the relay sheds signals while MAX_IN_FLIGHT publishes are unsettled, and recovers when they settle', async (t) => {
  // a publish that settles only when told: a hung Redis, as the broker's bounded publish sees it
  const pending: Array<() => void> = []
  const published: string[] = []
  const relay = new TypingRelay({
    log: createLogger('silent'),
    publish: async (topic, payload) => {
      published.push(`${topic} ${payload.toString()}`)
      await new Promise<void>(resolve => pending.push(resolve))
    }
  }, new TypingThrottle(0))
  const outcomes = new Set(Array.from({ length: MAX_IN_FLIGHT }, (_v, i) => relay.signal(`u${i}`, 'c', true)))
  t.same([...outcomes], ['forwarded'])
  t.equal(relay.signal('one-more', 'c', true), 'shed')
  t.equal(published.length, MAX_IN_FLIGHT)
  t.equal(published[0], 'conv/c/typing {"user_id":"u0","typing":true}')
  for (const settle of pending.splice(0)) settle()
  await new Promise<void>(resolve => setImmediate(resolve))
  t.equal(relay.signal('one-more', 'c', true), 'forwarded')
})
