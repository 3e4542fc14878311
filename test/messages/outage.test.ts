// DESIGN.md §3/§4, error code `unavailable`: "store down: the error event is sent, no
// PUBACK, and the connection is closed so that the client's MQTT session resends the
// send when it reconnects". PostgreSQL is taken away from a running server by a TCP proxy
// (connections reset, new ones refused) and given back; nothing else is faked.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { createLogger } from '../../broker/logger.js'
import { openStore } from '../../broker/store/index.js'
import { createTokenService } from '../../core/tokens.js'
import { text, userId } from '../helpers/fixtures.js'
import { TEST_SECRET, tempDir } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { spawnServer } from '../helpers/spawn-node.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

interface Envelope { t: string, conv_id?: string, seq?: number, client_msg_id?: string, code?: string, message?: string }

const tokens = createTokenService(TEST_SECRET)

/** Resolves with the first message on `client` that `match` accepts. */
function next (client: MqttClient, match: (topic: string, m: Envelope) => boolean): Promise<Envelope> {
  return new Promise((resolve) => {
    const on = (topic: string, payload: Buffer): void => {
      const m = JSON.parse(payload.toString()) as Envelope
      if (!match(topic, m)) return
      client.off('message', on)
      resolve(m)
    }
    client.on('message', on)
  })
}

const once = <T extends unknown[]>(client: MqttClient, event: string): Promise<T> =>
  new Promise(resolve => client.once(event as 'close', (...args: unknown[]) => resolve(args as T)))

interface Teardownable { teardown(fn: () => unknown): void }

/**
 * The real server process reaching a fresh PostgreSQL database only through a proxy;
 * alice with a `watch` device on her inbox and a `phone` that sends: a persistent session
 * that reconnects by itself, as apps do.
 */
async function setup (t: Teardownable, urlParams = '') {
  const db = await createDatabase()
  t.teardown(db.drop)
  const pgUrl = new URL(db.url)
  const proxy = await startTcpProxy(t, { host: pgUrl.hostname, port: Number(pgUrl.port) })

  // users and the conversation go straight to PostgreSQL, as the REST routes would put them
  const alice = userId('alice')
  const bob = userId('bob')
  const conv = randomUUID()
  const direct = await openStore({ databaseUrl: db.url, dataDir: '' }, createLogger('silent'))
  t.teardown(() => direct.close())
  await direct.transaction(async (tx) => {
    await tx.query('INSERT INTO users (id, display_name) VALUES ($1, $1), ($2, $2)', [alice, bob])
    await tx.query('INSERT INTO conversations (id, type, created_by, direct_key) VALUES ($1, \'direct\', $2, $3)', [conv, alice, [alice, bob].sort().join('|')])
    await tx.query('INSERT INTO members (conv_id, user_id) VALUES ($1, $2), ($1, $3)', [conv, alice, bob])
  })

  const server = await spawnServer(t, {
    env: { DATABASE_URL: proxy.urlFor(db.url) + urlParams, THREADLINE_DATA_DIR: await tempDir(t), THREADLINE_JWT_SECRET: TEST_SECRET }
  })
  const http = (path: string): Promise<number> => fetch(`http://127.0.0.1:${server.httpPort}${path}`).then(r => r.status)

  const options = (device: string, extra: IClientOptions = {}): IClientOptions => ({
    clientId: `${alice}:${device}`, username: alice, password: tokens.sign({ sub: alice }, 3600), protocolVersion: 4, reconnectPeriod: 0, ...extra
  })
  // another device of alice's watches her inbox, where the error event goes
  const watch = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, options('watch'))
  t.teardown(() => watch.endAsync(true))
  await watch.subscribeAsync(`user/${alice}/inbox`, { qos: 1 })
  const inbox: Envelope[] = []
  watch.on('message', (_topic, payload) => { inbox.push(JSON.parse(payload.toString()) as Envelope) })

  // CONNACK 3 (server unavailable) is worth retrying: MQTT.js gives up on it unless told
  const phone = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`,
    options('phone', { clean: false, reconnectPeriod: 200, reconnectOnConnackError: true }))
  t.teardown(() => phone.endAsync(true))
  let refused: () => void = () => {}
  const connackRefused = new Promise<void>(resolve => { refused = resolve })
  phone.on('error', (err) => { if ((err as { code?: number }).code === 3) refused() })

  const send = (id: string): Promise<unknown> => phone.publishAsync(`conv/${conv}/send`, text(id, `text of ${id}`), { qos: 1 })
  const events = (): Promise<string[]> => direct.query<{ seq: number, client_msg_id: string }>(
    'SELECT seq, client_msg_id FROM events WHERE conv_id = $1 ORDER BY seq', [conv]).then(rows => rows.map(r => `${r.seq} ${r.client_msg_id}`))
  return { proxy, server, http, conv, watch, inbox, phone, connackRefused, send, events }
}

t.test('with PostgreSQL unreachable a send gets no PUBACK, an `unavailable` error and a closed connection; once it is back the session resends it and it is stored once', async (t) => {
  const { proxy, server, http, conv, watch, inbox, phone, connackRefused, events } = await setup(t)

  await phone.publishAsync(`conv/${conv}/send`, text('before', 'store is up'), { qos: 1 })
  t.pass('a send is acknowledged while PostgreSQL is reachable')
  t.equal(await http('/healthz'), 200, '/healthz answers')
  t.equal(await http('/readyz'), 200, '/readyz: ready while the store is reachable')

  // — outage —
  proxy.cut()
  const closedByServer = once(phone, 'close')
  const errorEvent = next(watch, (_topic, m) => m.t === 'error' && m.client_msg_id === 'during')
  let acked = false
  const during = phone.publishAsync(`conv/${conv}/send`, text('during', 'store is down'), { qos: 1 }).then(() => { acked = true })

  const err = await errorEvent
  t.match(err, { t: 'error', code: 'unavailable', conv_id: conv, client_msg_id: 'during', message: String }, 'the other device gets `unavailable` on the inbox')
  await closedByServer
  t.pass('the server closed the sender\'s connection')
  t.equal(acked, false, 'no PUBACK for the send')

  // the session keeps knocking; the server can't load it without its store and says so
  await connackRefused
  t.pass('reconnects during the outage are refused with CONNACK 3 (server unavailable)')
  t.equal(acked, false, 'still no PUBACK')
  t.equal(await http('/healthz'), 200, '/healthz keeps answering during the outage')
  t.equal(await http('/readyz'), 503, '/readyz: not ready during the outage')
  t.equal(server.child.exitCode, null, 'the server process is up')

  // — recovery —
  proxy.restore()
  await during
  t.pass('after PostgreSQL is back, the session reconnects, resends the send and gets its PUBACK')
  t.ok(phone.connected, 'connected again')

  // a later send on the same path: once it is in, any duplicate of `during` would be too
  const later = next(watch, (_topic, m) => m.t === 'event' && m.client_msg_id === 'after')
  await phone.publishAsync(`conv/${conv}/send`, text('after', 'all good'), { qos: 1 })
  await later
  t.same(await events(), ['1 before', '2 during', '3 after'], 'stored exactly once, under the next seq')
  const delivered = inbox.filter(m => m.t === 'event').map(m => `${m.seq} ${m.client_msg_id}`)
  t.same(delivered, ['1 before', '2 during', '3 after'], 'delivered exactly once to the other device')
  t.equal(inbox.filter(m => m.t === 'error').length, 1, 'one error event in all')
  t.equal(await http('/readyz'), 200, '/readyz: ready again')
  t.equal(server.child.exitCode, null, 'the server process stayed up throughout')
})

t.test('when PostgreSQL stops answering without a word (packets dropped, no reset) a send still gets `unavailable` in bounded time', async (t) => {
  // the bound comes from the driver's query timeout; the URL's query_timeout shortens it
  // for the test (pg reads it from the connection string)
  const QUERY_TIMEOUT_MS = 1500
  const { proxy, server, http, conv, watch, inbox, phone, send, events } = await setup(t, `?query_timeout=${QUERY_TIMEOUT_MS}`)
  await send('before')

  proxy.stall()
  const started = Date.now()
  const closedByServer = once(phone, 'close')
  const errorEvent = next(watch, (_topic, m) => m.t === 'error' && m.client_msg_id === 'during')
  let acked = false
  const during = send('during').then(() => { acked = true })
  t.match(await errorEvent, { code: 'unavailable', conv_id: conv }, '`unavailable` on the inbox')
  await closedByServer
  const waited = Date.now() - started
  // one query timeout, not two: the silent connection is thrown away, not asked to ROLLBACK
  t.ok(waited < QUERY_TIMEOUT_MS * 2, `connection closed ${waited} ms into the silence (query timeout ${QUERY_TIMEOUT_MS} ms), not left hanging`)
  t.equal(acked, false, 'no PUBACK')
  t.equal(await http('/healthz'), 200, '/healthz keeps answering')

  proxy.restore()
  await during
  t.pass('once PostgreSQL answers again, the resent send is acknowledged')
  const later = next(watch, (_topic, m) => m.t === 'event' && m.client_msg_id === 'after')
  await send('after')
  await later
  t.same(await events(), ['1 before', '2 during', '3 after'], 'stored exactly once')
  t.same(inbox.filter(m => m.t === 'event').map(m => `${m.seq} ${m.client_msg_id}`), ['1 before', '2 during', '3 after'], 'delivered exactly once')
  t.equal(server.child.exitCode, null, 'the server process stayed up')
})
