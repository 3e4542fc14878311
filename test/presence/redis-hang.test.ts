// A Redis that stops answering (its connections open, nothing answered) must stall
// nothing of presence: node B reaches Redis through a proxy that holds every byte while
// "hung". Sends on B go on, GET /v1/presence and the presence service answer in bounded
// time, and what changed meanwhile reaches the other node once Redis answers again. The
// hard case is the one this test makes: the update timed out on B, yet Redis ran it when
// the proxy let it through, so B's retry finds nothing to change; the change waits in the
// outbox and is published once it is stale (plugins/presence/redis-backend.ts).
import t from 'tap'
import { PRESENCE_SERVICE } from '../../core/presence/service.js'
import { redisBehindProxy } from '../helpers/cluster.js'
import { createConversation } from '../helpers/fixtures.js'
import { connectUser, startNode, token } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { sendText } from '../helpers/access.js'
import { newUsers, say, statsOf, watcher } from './watch.js'
import { waitFor } from '../helpers/wait.js'

const TIMEOUT_MS = 300
/** long enough that B is not taken for dead while its Redis hangs (3 heartbeats) */
const HEARTBEAT_MS = 2000

async function timed<T> (work: Promise<T>): Promise<{ value: T, ms: number }> {
  const started = Date.now()
  const value = await work
  return { value, ms: Date.now() - started }
}

t.test('presence on a node whose Redis hangs: bounded answers, sends unaffected, repaired after', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const env = { THREADLINE_REDIS_TIMEOUT_MS: String(TIMEOUT_MS), THREADLINE_PRESENCE_HEARTBEAT_MS: String(HEARTBEAT_MS) }
  const a = await startNode(t, { databaseUrl: db.url, env: { ...env, REDIS_URL: redisUrl } })
  const b = await startNode(t, { databaseUrl: db.url, env: { ...env, REDIS_URL: proxy.urlFor(redisUrl) } })

  const [alice, bob, somebody] = await newUsers(a, 'alice', 'bob', 'somebody')
  const conv = await createConversation(b, [alice, bob])
  const phone = await connectUser(t, b, alice, 'phone')
  const viewer = await watcher(t, a, bob)
  t.equal(await viewer.watch(alice), 0)
  await viewer.next(alice, 'online')

  proxy.hang()

  const lookup = await timed(b.app.inject({ method: 'GET', url: `/v1/presence?user_ids=${alice}`, headers: { authorization: `Bearer ${token(b, bob)}` } }))
  t.equal(lookup.value.statusCode, 503, 'GET /v1/presence: 503')
  t.match(lookup.value.json(), { code: 'unavailable' })
  t.ok(lookup.ms < 3 * TIMEOUT_MS + 1000, `answered in ${lookup.ms} ms`)

  const service = b.services.get(PRESENCE_SERVICE)
  const asked = await timed(service.connected([alice, somebody]))
  t.same([...asked.value], [alice], 'the service answers from this node\'s devices')
  t.ok(asked.ms < 3 * TIMEOUT_MS + 1000, `in ${asked.ms} ms`)

  await say(phone, alice, 'away') // its sync to Redis fails, bounded, and is retried
  const send = await timed(sendText(phone, conv, 'during-the-hang'))
  t.ok(send.ms < 1000, `a send on the node is PUBACKed in ${send.ms} ms`)
  await waitFor(() => statsOf(b).failed === 1, 'the sync of the away state to fail')

  proxy.resume()
  t.same(await viewer.next(alice, 'away', 15_000), { user_id: alice, state: 'away' }, 'the state said during the hang arrives once Redis answers')
  // after a Redis failure a change is published at least once (the outbox may publish one
  // the timed-out call also made): repeats of a state are allowed, a wrong order is not
  const states = viewer.states(alice).filter((s, i, all) => s !== all[i - 1])
  t.same(states, ['online', 'away'])
})
