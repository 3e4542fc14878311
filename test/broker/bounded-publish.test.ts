// broker/bounded-publish.ts: a publish that never calls back still settles, in bounded
// time, so the send path's in-flight slots come back; one that settles is untouched.
import t from 'tap'
import { boundPublish, PublishTimeoutError } from '../../broker/bounded-publish.js'

const never = (_args: [string], _done: (err?: Error | null) => void): void => {}

// the sweep timer is unref'd (it must not keep a stopping node alive), and a promise that
// never settles holds nothing either: keep the process up while a test waits on it
const keepAlive = setInterval(() => {}, 1000)
t.teardown(() => clearInterval(keepAlive))

t.test('a publish that never settles fails after the bound, naming its topic', async (t) => {
  const bounded = boundPublish(never, 100)
  t.teardown(() => bounded.stop())
  const started = Date.now()
  const err = await bounded.publish('user/u/inbox').then(() => null, (e: unknown) => e)
  const ms = Date.now() - started
  t.type(err, PublishTimeoutError)
  t.match((err as Error).message, /user\/u\/inbox.*100 ms/)
  t.ok(ms >= 100 && ms < 1000, `after the bound, not long after (${ms} ms)`)
  t.equal(bounded.timedOut, 1)
})

t.test('publishes that settle keep their outcome; only the stuck ones time out', async (t) => {
  const publish = ([topic]: [string], done: (err?: Error | null) => void): void => {
    if (topic === 'stuck') return
    setImmediate(() => done(topic.startsWith('fail') ? new Error(`failed ${topic}`) : null))
  }
  const bounded = boundPublish(publish, 50)
  t.teardown(() => bounded.stop())
  const outcomes = await Promise.allSettled(['fail-a', 'b', 'stuck', 'c', 'stuck', 'fail-d'].map(topic => bounded.publish(topic)))
  t.same(outcomes.map(o => o.status === 'fulfilled' ? 'ok' : (o.reason as Error).name), ['Error', 'ok', 'PublishTimeoutError', 'ok', 'PublishTimeoutError', 'Error'])
  t.equal(bounded.timedOut, 2)
})

t.test('thousands of stuck publishes all settle within the bound', async (t) => {
  const bounded = boundPublish(never, 100)
  t.teardown(() => bounded.stop())
  const started = Date.now()
  const outcomes = await Promise.allSettled(Array.from({ length: 5000 }, (_v, i) => bounded.publish(`t/${i}`)))
  t.ok(outcomes.every(o => o.status === 'rejected'), 'every one failed')
  t.ok(Date.now() - started < 2000, `and released in bounded time (${Date.now() - started} ms)`)
})
