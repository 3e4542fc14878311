// A node killed with kill -9 while it holds a poll loses nothing of the queue: the queue
// and what the client acknowledged are in Redis, so the client repeats the poll (the
// same last_event_id, as after any lost answer) on another node and gets every event
// sent meanwhile, exactly once; so too when A dies mid-stream, whatever it was doing
// for the poll. Node A runs the real server as a child process; node B runs in the test.
import t, { type Test } from 'tap'
import mqtt from 'mqtt'
import { Redis } from 'ioredis'
import type { Threadline } from '../../broker/server.js'
import { createTokenService } from '../../core/tokens.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { http, LongPollClient } from '../helpers/longpoll.js'
import { connectUser, startNode, TEST_SECRET, tempDir } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { leaseRedisUrl } from '../helpers/redis-db.js'
import { spawnServer, type ServerProcess } from '../helpers/spawn-node.js'
import { waitFor } from '../helpers/wait.js'

const BEFORE = 3
const MEANWHILE = 10
const STREAM = 300
const WINDOW = 10
const KILL_AFTER = 100
const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, k) => from + k)

interface Setup {
  readonly a: ServerProcess
  readonly b: Threadline
  readonly redisUrl: string
  readonly alice: string
  readonly conv: string
  /** bob's queue, opened on A */
  readonly lp: LongPollClient
}

async function setup (t: Test): Promise<Setup> {
  const db = await createDatabase()
  t.teardown(db.drop)
  const redisUrl = await leaseRedisUrl(t)
  // B starts first and migrates the database
  const b = await startNode(t, { databaseUrl: db.url, env: { REDIS_URL: redisUrl, THREADLINE_SEND_RATE: '100000', THREADLINE_SEND_BURST: '100000' } })
  const a = await spawnServer(t, {
    env: { REDIS_URL: redisUrl, DATABASE_URL: db.url, THREADLINE_JWT_SECRET: TEST_SECRET, THREADLINE_DATA_DIR: await tempDir(t) }
  })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(b, [alice, bob])
  const lp = new LongPollClient(b, bob)
  lp.node = { httpPort: a.httpPort }
  await lp.open()
  return { a, b, redisUrl, alice, conv, lp }
}

t.test('a poll held on a node killed with kill -9 is repeated on another node: every event exactly once', async (t) => {
  const { a, b, redisUrl, alice, conv, lp } = await setup(t)
  const tokens = createTokenService(TEST_SECRET)
  const alicePhone = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.mqttPort}`, {
    clientId: `${alice}:phone`, username: alice, password: tokens.sign({ sub: alice }, 3600), protocolVersion: 4, reconnectPeriod: 0
  })
  alicePhone.on('error', () => {}) // its socket dies with A
  t.teardown(() => alicePhone.endAsync(true))

  // A fills the queue it opened, and bob processes what it gives
  for (const k of range(1, BEFORE)) await alicePhone.publishAsync(`conv/${conv}/send`, text(`m${k}`, `before ${k}`), { qos: 1 })
  t.same((await lp.collect(BEFORE)).map(e => e.seq), range(1, BEFORE), `bob gets m1..m${BEFORE} on A`)
  t.equal(lp.lastEventId, BEFORE)
  // the next poll acknowledges them, finds nothing, and is held on A
  const redis = new Redis(redisUrl)
  t.teardown(() => redis.disconnect())
  const since = Date.now()
  const held = lp.request(60)
  held.catch(() => {}) // awaited below; it fails when A dies
  // the poll's read marks the queue polled in Redis; then the poll waits
  await waitFor(async () => Number(await redis.zscore('tl:lp:polled', lp.queueId) ?? 0) >= since, 'the poll held on A')

  a.child.kill('SIGKILL')
  t.equal((await a.exited).signal, 'SIGKILL', 'A died of SIGKILL')
  await t.rejects(held, 'the held poll dies with A: its answer never comes')

  // meanwhile alice goes on sending, over B
  const aliceLaptop = await connectUser(t, b, alice, 'laptop')
  for (const k of range(BEFORE + 1, MEANWHILE)) await aliceLaptop.publishAsync(`conv/${conv}/send`, text(`m${k}`, `meanwhile ${k}`), { qos: 1 })

  // bob repeats the poll on B, with the id he last processed
  lp.node = b
  const repeated = await lp.request(10)
  t.equal(repeated.status, 200, 'B answers the queue A opened')
  t.same(repeated.body.events.map(e => e.event_id), range(BEFORE + 1, MEANWHILE), 'the events that came meanwhile, none acknowledged before')
  t.same(repeated.body.events.map(e => e.client_msg_id), range(BEFORE + 1, MEANWHILE).map(k => `m${k}`))
  t.same(repeated.body.events.map(e => e.seq), range(BEFORE + 1, MEANWHILE), 'in seq order')
  t.same((await lp.request(10)).body, repeated.body, 'repeated once more (lost again), the same answer')
  lp.lastEventId = repeated.body.last_event_id
  t.same(await lp.poll(0), [], 'acknowledged: nothing more')

  const history = await http<{ events: Array<{ seq: number, client_msg_id: string }> }>(b, lp.bearer, 'GET', `/v1/conversations/${conv}/events?after_seq=0`)
  t.same(history.body.events.map(e => e.client_msg_id), range(1, BEFORE + MEANWHILE).map(k => `m${k}`),
    'every acknowledged send is stored; the client got each of them exactly once')
})

t.test('kill -9 of the node polled while events stream in: the client goes on on another node, every event exactly once', async (t) => {
  const { a, b, alice, conv, lp } = await setup(t)
  const aliceLaptop = await connectUser(t, b, alice, 'laptop')

  // alice sends over B, WINDOW unacknowledged at most; A is killed from inside a PUBACK
  // handler mid-stream, whatever it is doing for bob's poll then (holding it, reading
  // the queue, writing the answer)
  let acked = 0
  const sending = (async () => {
    for (let k = 1; k <= STREAM; k += WINDOW) {
      await Promise.all(range(k, Math.min(WINDOW, STREAM - k + 1)).map(async (i) => {
        await aliceLaptop.publishAsync(`conv/${conv}/send`, text(`s${i}`, `stream ${i}`), { qos: 1 })
        if (++acked === KILL_AFTER) a.child.kill('SIGKILL')
      }))
    }
  })()

  // bob polls as an app would: an answer that never comes is repeated, on the other node
  const got: Array<{ event_id: number, seq: unknown, client_msg_id: unknown }> = []
  let onA = 0
  let failed = 0
  const deadline = Date.now() + 30_000
  while (got.length < STREAM) {
    if (Date.now() > deadline) throw new Error(`${got.length} of ${STREAM} events after 30 s`)
    try {
      const events = await lp.poll(2)
      if (lp.node.httpPort === a.httpPort) onA += events.length
      got.push(...events.map(e => ({ event_id: e.event_id, seq: e.seq, client_msg_id: e.client_msg_id })))
    } catch {
      failed++
      lp.node = b
    }
  }
  await sending
  t.equal((await a.exited).signal, 'SIGKILL', 'A died of SIGKILL')
  t.ok(failed > 0, `the client moved to B after ${failed} failed poll(s)`)
  t.comment(`${onA} of ${STREAM} events came from A before the kill, the rest from B`)
  t.same(got.map(e => e.event_id), range(1, STREAM), `event ids 1..${STREAM}: none skipped, none twice`)
  t.same(got.map(e => e.seq), range(1, STREAM), 'seqs in order')
  t.same(got.map(e => e.client_msg_id), range(1, STREAM).map(k => `s${k}`))
  t.same(await lp.poll(0), [], 'nothing more')
})
