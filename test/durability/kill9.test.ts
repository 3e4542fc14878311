// DESIGN.md §4 "Sent ✓ = stored": a QoS 1 send is PUBACKed only after its row is
// committed, and "nothing acknowledged is ever lost, including across kill -9 of any
// node". The real server runs as a child process; it is killed with SIGKILL while
// hundreds of sends are in flight, restarted on the same data, and every send that got
// its PUBACK must be in the events table.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { createLogger } from '../../broker/logger.js'
import { openStore, type Store } from '../../broker/store/index.js'
import { createTokenService } from '../../core/tokens.js'
import { text, userId } from '../helpers/fixtures.js'
import { TEST_SECRET, tempDir } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { spawnServer, type ServerProcess } from '../helpers/spawn-node.js'

const SENDS = 300
/** PUBACKs to wait for before the kill */
const KILL_AFTER_ACKS = 100
/** sends published and not yet acknowledged, at most */
const WINDOW = 40

const tokens = createTokenService(TEST_SECRET)
const silent = createLogger('silent')

interface Seed { alice: string, bob: string, conv: string }

/** Users, a direct conversation and its members, written the way the REST routes would. */
async function seed (store: Store): Promise<Seed> {
  const alice = userId('alice')
  const bob = userId('bob')
  const conv = randomUUID()
  await store.transaction(async (tx) => {
    await tx.query('INSERT INTO users (id, display_name) VALUES ($1, $1), ($2, $2)', [alice, bob])
    await tx.query('INSERT INTO conversations (id, type, created_by, direct_key) VALUES ($1, \'direct\', $2, $3)', [conv, alice, [alice, bob].sort().join('|')])
    await tx.query('INSERT INTO members (conv_id, user_id) VALUES ($1, $2), ($1, $3)', [conv, alice, bob])
  })
  return { alice, bob, conv }
}

async function connect (t: { teardown(fn: () => unknown): void }, server: ServerProcess, user: string, device: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, {
    clientId: `${user}:${device}`,
    username: user,
    password: tokens.sign({ sub: user }, 3600),
    protocolVersion: 4,
    reconnectPeriod: 0
  })
  // errors after the kill are expected: the socket dies under the client
  client.on('error', () => {})
  t.teardown(() => client.endAsync(true))
  return client
}

interface Stored { seq: number, client_msg_id: string }

for (const store of ['pg', 'pglite'] as const) {
  t.test(`[${store}] every acknowledged send survives kill -9 of the server`, async (t) => {
    const dataDir = await tempDir(t)
    const env: Record<string, string> = {
      THREADLINE_DATA_DIR: dataDir,
      THREADLINE_JWT_SECRET: TEST_SECRET,
      THREADLINE_SEND_RATE: '100000',
      THREADLINE_SEND_BURST: '100000'
    }
    if (store === 'pg') {
      const db = await createDatabase()
      t.teardown(db.drop)
      env.DATABASE_URL = db.url
    }
    const openTestStore = (): Promise<Store> => openStore({ databaseUrl: env.DATABASE_URL ?? null, dataDir }, silent)

    // PGlite's files belong to one process at a time: seed before the server owns them
    const seeding = await openTestStore()
    const { alice, conv } = await seed(seeding)
    await seeding.close()

    const first = await spawnServer(t, { env })
    const phone = await connect(t, first, alice, 'phone')

    // As fast as the server takes them, with WINDOW unacknowledged at any time: commits
    // are going on when the kill lands (all 300 at once would share one group commit
    // and be done before the first PUBACK came back).
    const acked: string[] = []
    let sent = 0
    let killedAt = -1
    const sendStarted = Date.now()
    const sendNext = (): void => {
      if (killedAt >= 0 || sent === SENDS) return
      const id = `k${++sent}`
      phone.publishAsync(`conv/${conv}/send`, text(id, `message ${sent}`), { qos: 1 }).then(() => {
        acked.push(id)
        if (acked.length === KILL_AFTER_ACKS) {
          // kill -9 at once, from inside the PUBACK handler: no chance for a tidy exit
          killedAt = Date.now() - sendStarted
          first.child.kill('SIGKILL')
        }
        sendNext()
      }, () => {})
    }
    for (let w = 0; w < WINDOW; w++) sendNext()
    const exit = await first.exited
    t.equal(exit.signal, 'SIGKILL', `the server died of SIGKILL ${killedAt} ms into the run`)
    // PUBACKs already on the wire when the process died are still read off the socket
    await new Promise<void>(resolve => { if (phone.connected) phone.once('close', () => resolve()); else resolve() })
    t.ok(acked.length >= KILL_AFTER_ACKS && acked.length < sent, `${acked.length} of ${sent} published sends acknowledged before the kill`)
    t.comment(`published: ${sent}, acknowledged: ${acked.length}, in flight at the kill: ${sent - acked.length}`)

    // restart on the very same data
    const second = await spawnServer(t, { env })
    t.pass('the server restarts on the data it was killed on')

    // The history as the restarted server serves it (GET /v1/conversations/:id/events,
    // pages of 200). For PGlite this is the only way in: its files belong to the server.
    const token = tokens.sign({ sub: alice }, 3600)
    const history = async (): Promise<Stored[]> => {
      const out: Stored[] = []
      for (;;) {
        const res = await fetch(`http://127.0.0.1:${second.httpPort}/v1/conversations/${conv}/events?after_seq=${out.at(-1)?.seq ?? 0}&limit=200`,
          { headers: { authorization: `Bearer ${token}` } })
        if (res.status !== 200) throw new Error(`history answered ${res.status}: ${await res.text()}`)
        const page = await res.json() as { events: Stored[], has_more: boolean }
        out.push(...page.events.map(e => ({ seq: e.seq, client_msg_id: e.client_msg_id })))
        if (!page.has_more || page.events.length === 0) return out
      }
    }

    const afterRestart = await history()
    const storedIds = new Set(afterRestart.map(r => r.client_msg_id))
    const lost = acked.filter(id => !storedIds.has(id))
    t.same(lost, [], `every one of the ${acked.length} acknowledged sends is stored`)
    t.same(afterRestart.map(r => r.seq), Array.from({ length: afterRestart.length }, (_, k) => k + 1), 'seqs stay gapless: a transaction cut by the kill left no trace')
    t.ok(afterRestart.every((r, k) => r.client_msg_id === `k${k + 1}`), 'stored in publish order: k1, k2, … without holes, nothing else')
    t.comment(`stored after the kill: ${afterRestart.length} (acknowledged ${acked.length}; the rest were committed without their PUBACK reaching the client, or never committed)`)
    if (store === 'pg') {
      const reader = await openTestStore()
      t.teardown(() => reader.close())
      const rows = await reader.query<Stored>('SELECT seq, client_msg_id FROM events WHERE conv_id = $1 ORDER BY seq', [conv])
      t.same(rows, afterRestart, 'the events table agrees with the history API')
    }

    // What the client's MQTT session does on reconnect: send the unacknowledged ones again
    // (the acknowledged ones too, here, as a retry after a lost PUBACK would). The
    // restarted server takes them on the recovered data; nothing is stored twice and
    // nothing is missing.
    const again = await connect(t, second, alice, 'phone')
    const resends = []
    for (let i = 1; i <= SENDS; i++) resends.push(again.publishAsync(`conv/${conv}/send`, text(`k${i}`, `message ${i}`), { qos: 1 }))
    await Promise.all(resends)
    const all = await history()
    t.same(all.map(r => `${r.seq} ${r.client_msg_id}`), Array.from({ length: SENDS }, (_, k) => `${k + 1} k${k + 1}`),
      `after the resends: exactly ${SENDS} events, each once, in publish order, under seqs 1..${SENDS}`)
  })
}
