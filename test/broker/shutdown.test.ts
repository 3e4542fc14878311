// DESIGN.md §7: SIGTERM drains gracefully: stop accepting, finish in-flight sends,
// close sessions. The real server runs as a child process.
import { randomUUID } from 'node:crypto'
import net from 'node:net'
import t from 'tap'
import mqtt from 'mqtt'
import pg from 'pg'
import { createLogger } from '../../broker/logger.js'
import { openStore } from '../../broker/store/index.js'
import { createTokenService } from '../../core/tokens.js'
import { text, userId } from '../helpers/fixtures.js'
import { TEST_SECRET, UNLIMITED_SENDS, tempDir } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { spawnServer } from '../helpers/spawn-node.js'

const SENDS = 200

t.test('SIGTERM commits every send it acknowledged, closes sessions and exits 0', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  // migrate and seed before the server starts
  const store = await openStore({ databaseUrl: db.url, dataDir: await tempDir(t) }, createLogger('silent'))
  const [alice, bob, conv] = [userId('alice'), userId('bob'), randomUUID()]
  await store.query('INSERT INTO users (id, display_name) VALUES ($1, $1), ($2, $2)', [alice, bob])
  await store.query("INSERT INTO conversations (id, type, created_by) VALUES ($1, 'direct', $2)", [conv, alice])
  await store.query('INSERT INTO members (conv_id, user_id) VALUES ($1, $2), ($1, $3)', [conv, alice, bob])
  await store.close()

  const server = await spawnServer(t, { env: { DATABASE_URL: db.url, THREADLINE_DATA_DIR: await tempDir(t), THREADLINE_JWT_SECRET: TEST_SECRET, ...UNLIMITED_SENDS } })
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, {
    clientId: `${alice}:phone`, username: alice, password: createTokenService(TEST_SECRET).sign({ sub: alice }, 600), reconnectPeriod: 0
  })
  client.on('error', () => {})
  t.teardown(() => client.endAsync(true))
  const closed = new Promise<void>(resolve => client.once('close', () => resolve()))

  // sends still unacknowledged when the session closes stay pending in MQTT.js (its
  // session would resend them), so count PUBACKs rather than awaiting every send
  const acked: string[] = []
  let signalled: Promise<{ code: number | null }> | null = null
  for (let i = 0; i < SENDS; i++) {
    client.publishAsync(`conv/${conv}/send`, text(`m${i}`, `message ${i}`), { qos: 1 }).then(() => {
      acked.push(`m${i}`)
      if (acked.length === 20) signalled = server.stop('SIGTERM')
    }, () => {})
  }
  await closed
  t.pass('the server closed the session')
  const exit = await (signalled ?? server.stop('SIGTERM'))
  t.comment(server.output.slice(-3).join('\n'))
  t.equal(exit.code, 0, 'exit code 0')
  t.ok(acked.length >= 20, `${acked.length} sends were acknowledged`)

  const refused = await new Promise<boolean>((resolve) => {
    const socket = net.connect(server.mqttPort, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => resolve(true))
  })
  t.ok(refused, 'nothing listens any more')

  const check = new pg.Client({ connectionString: db.url })
  await check.connect()
  const rows = (await check.query<{ client_msg_id: string, seq: string }>('SELECT client_msg_id, seq FROM events WHERE conv_id = $1 ORDER BY seq', [conv])).rows
  await check.end()
  const stored = new Set(rows.map(r => r.client_msg_id))
  t.same(acked.filter(id => !stored.has(id)), [], 'every acknowledged send is stored')
  t.same(rows.map(r => Number(r.seq)), rows.map((_, i) => i + 1), 'seqs are gapless')
  t.same(rows.map(r => r.client_msg_id), rows.map((_, i) => `m${i}`), 'in publish order')
})
