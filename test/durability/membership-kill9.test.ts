// A node killed (`kill -9`) right after it committed a removal never announces it. The
// other nodes must still stop delivering the conversation to the removed member, and
// must refuse them its history: both come from the store (the change log written in the
// removal's transaction, and the members table), not from the dead node's announcement.
//
// Node A runs the real server in a child process and reaches Redis through a proxy that
// the test cuts before the removal: A commits, then its announcement waits on a Redis it
// cannot reach, and A is killed as soon as the commit is visible in the store.
import t from 'tap'
import { emitterOf } from '../../broker/membership.js'
import { redisBehindProxy } from '../helpers/cluster.js'
import { userId } from '../helpers/fixtures.js'
import { untilForward, within } from '../helpers/membership.js'
import { connectUser, startNode, tempDir, TEST_SECRET, token } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { spawnServer, type ServerProcess } from '../helpers/spawn-node.js'

/** A REST call to the child process as `user` (tokens share the test secret). */
async function rest (server: ServerProcess, bearer: string, method: 'POST' | 'DELETE', path: string, body?: object): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {})
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }
}

t.test('kill -9 of the node that removed a member, before it announced it: the other node still cuts the member off', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const a = await spawnServer(t, {
    env: { DATABASE_URL: db.url, REDIS_URL: proxy.urlFor(redisUrl), THREADLINE_JWT_SECRET: TEST_SECRET, THREADLINE_DATA_DIR: await tempDir(t) }
  })
  const b = await startNode(t, { databaseUrl: db.url, env: { REDIS_URL: redisUrl } })

  const [alice, bob] = [userId('alice'), userId('bob')]
  const asAlice = token(b, alice)
  const created = await rest(a, asAlice, 'POST', '/v1/conversations', { type: 'group', title: 'plans', members: [bob] })
  t.equal(created.status, 201, 'alice creates the group on A')
  const group = created.body.id as string
  const direct = (await rest(a, asAlice, 'POST', '/v1/conversations', { type: 'direct', members: [bob] })).body.id as string

  // both on B: once A is dead, B is the cluster
  const alicePhone = await connectUser(t, b, alice, 'phone')
  const bobPhone = await connectUser(t, b, bob, 'phone')
  const granted = await bobPhone.subscribeAsync({ [`conv/${group}/events`]: { qos: 1 }, [`user/${bob}/inbox`]: { qos: 1 } })
  t.same(granted.map(g => g.qos), [1, 1], 'bob on B follows the group and his inbox')
  await untilForward({ sender: alicePhone, watcher: bobPhone, watcherId: bob, group, direct, timeoutMs: 5000 }, 'delivered')
  t.pass('while a member, bob gets the group on B')

  // B must not hear about the removal from anyone but the store
  let announced = 0
  emitterOf(b.broker).on('$threadline/membership', (_packet, cb) => { announced++; cb() })

  proxy.cut()
  const removal = rest(a, asAlice, 'DELETE', `/v1/conversations/${group}/members/${bob}`).catch(() => null)
  const committed = async (): Promise<void> => {
    for (;;) {
      const rows = await b.store.query('SELECT 1 FROM members WHERE conv_id = $1 AND user_id = $2', [group, bob])
      if (rows.length === 0) return
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  }
  await within(committed(), 10_000, 'the removal committed on A')
  a.child.kill('SIGKILL')
  t.equal((await a.exited).signal, 'SIGKILL', 'A died of SIGKILL right after the removal committed')
  // A may or may not have answered the DELETE before it died (with the cluster bus down
  // its announcement is skipped at once): what matters is that B never heard it
  await removal
  t.equal(announced, 0, 'no announcement of the removal ever reached B')

  const history = await b.app.inject({ method: 'GET', url: `/v1/conversations/${group}/events`, headers: { authorization: `Bearer ${token(b, bob)}` } })
  t.equal(history.statusCode, 403, 'at once, B refuses bob the history')
  t.equal(history.json().code, 'not_member')

  const afterMs = await untilForward({ sender: alicePhone, watcher: bobPhone, watcherId: bob, group, direct, timeoutMs: 10_000 }, 'withheld')
  t.ok(afterMs < 5000, `bob's old subscription on B stopped receiving the group ${afterMs} ms after the kill`)
})
