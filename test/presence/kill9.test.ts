// A node killed with kill -9 says nothing: its devices stay registered in Redis until the
// other nodes see its heartbeat run out (3 heartbeats) and remove them (at their next
// sweep). Its users go offline, last seen at its last heartbeat, unless a device of
// theirs is on another node. The node runs the real server as a child process.
import t from 'tap'
import mqtt from 'mqtt'
import { PRESENCE_SERVICE } from '../../core/presence/service.js'
import { createTokenService } from '../../core/tokens.js'
import { TEST_SECRET, connectUser, startNode, tempDir } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { leaseRedisUrl } from '../helpers/redis-db.js'
import { spawnServer } from '../helpers/spawn-node.js'
import { waitFor } from '../helpers/wait.js'
import { newUsers, storedLastSeen, watcher } from './watch.js'

const HEARTBEAT_MS = 300
/** documented bound: dead after 3 heartbeats, removed by the next sweep of another node */
const BOUND_MS = 4 * HEARTBEAT_MS

t.test('the users of a node killed with kill -9 go offline within the bound', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const redisUrl = await leaseRedisUrl(t)
  const env = { REDIS_URL: redisUrl, THREADLINE_PRESENCE_HEARTBEAT_MS: String(HEARTBEAT_MS), THREADLINE_PRESENCE_GRACE_MS: '10000' }
  // the survivor starts first and migrates the database
  const survivor = await startNode(t, { databaseUrl: db.url, env })
  const doomed = await spawnServer(t, { env: { ...env, DATABASE_URL: db.url, THREADLINE_JWT_SECRET: TEST_SECRET, THREADLINE_DATA_DIR: await tempDir(t) } })

  const [alice, carol, bob] = await newUsers(survivor, 'alice', 'carol', 'bob')
  const tokens = createTokenService(TEST_SECRET)
  const onDoomed = async (user: string): Promise<void> => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${doomed.mqttPort}`, {
      clientId: `${user}:phone`, username: user, password: tokens.sign({ sub: user }, 3600), protocolVersion: 4, reconnectPeriod: 0
    })
    c.on('error', () => {})
    t.teardown(() => c.endAsync(true))
  }
  await onDoomed(alice)
  await onDoomed(carol)
  await connectUser(t, survivor, carol, 'laptop') // carol has a device on the survivor too

  const viewer = await watcher(t, survivor, bob)
  t.equal(await viewer.watch(alice), 0)
  t.equal(await viewer.watch(carol), 0)
  await viewer.next(alice, 'online')
  await viewer.next(carol, 'online')

  const killedAt = Date.now()
  doomed.child.kill('SIGKILL')
  t.equal((await doomed.exited).signal, 'SIGKILL')
  const offline = await viewer.next(alice, 'offline')
  const after = Date.now() - killedAt
  t.ok(after <= BOUND_MS + 2000, `offline ${after} ms after the kill (bound: 4 heartbeats = ${BOUND_MS} ms, plus a sweep's work and a loaded machine's timer lag)`)
  t.ok(after < 10_000, 'not after the grace period: the devices have been gone for 3 heartbeats already')
  const seen = new Date(offline.last_seen as string).getTime()
  t.ok(seen <= killedAt && seen >= killedAt - 2 * HEARTBEAT_MS - 200, `last seen ${killedAt - seen} ms before the kill: its last heartbeat`)
  await waitFor(async () => await storedLastSeen(survivor, alice) === seen, 'users.last_seen')
  t.same(viewer.states(carol), ['online'], 'carol, with a device on the survivor, stays online')
  t.same(await survivor.services.get(PRESENCE_SERVICE).connected([alice, carol]), new Set([carol]), 'the service agrees')
})
