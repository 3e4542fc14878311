// What a node writes to its log (issue "Operations" item 5): one line per MQTT connection
// open and close with its clientId, reason and duration, one per refused CONNECT and
// refused HTTP request, answered HTTP requests quiet at the default level, and never a
// token or a message's text.
import { Writable } from 'node:stream'
import mqtt from 'mqtt'
import t from 'tap'
import { createLogger } from '../../broker/logger.js'
import { connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, text, userId } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/wait.js'

interface Line { level: number, msg: string, [field: string]: unknown }

/** A pino destination that keeps every line, parsed. */
function capture (): { lines: Line[], raw: string[], stream: Writable } {
  const lines: Line[] = []
  const raw: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(l => l !== '')) {
        raw.push(l)
        lines.push(JSON.parse(l) as Line)
      }
      done()
    }
  })
  return { lines, raw, stream }
}

const INFO = 30
const DEBUG = 20

t.test('info level: connection lines, refusals, quiet answered requests, no secrets', async (t) => {
  const log = capture()
  const node = await startNode(t, { store: 'pglite', logger: createLogger('info', log.stream) })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const secretText = `the-secret-text-${Date.now()}`

  // an answered request writes nothing at info
  const aliceToken = token(node, alice)
  const before = log.lines.length
  const me = await fetch(`http://127.0.0.1:${node.httpPort}/v1/me`, { headers: { authorization: `Bearer ${aliceToken}` } })
  t.equal(me.status, 200)
  // a send over HTTP: answered, quiet, and its text never logged
  const sent = await fetch(`http://127.0.0.1:${node.httpPort}/v1/conversations/${conv}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' },
    body: text('h1', secretText)
  })
  t.equal(sent.status, 201)
  // a refused request: one info line naming the route and status, no token
  const badToken = `${aliceToken.slice(0, -4)}AAAA`
  const refused = await fetch(`http://127.0.0.1:${node.httpPort}/v1/me?x=1`, { headers: { authorization: `Bearer ${badToken}` } })
  t.equal(refused.status, 401)
  await waitFor(() => log.lines.some(l => l.msg === 'request refused'), 'the refused request to be logged')
  const requestLines = log.lines.slice(before).filter(l => l.msg === 'request' || l.msg === 'request refused')
  t.equal(requestLines.length, 1, 'only the refused request wrote a line at info')
  t.match(requestLines[0], { level: INFO, method: 'GET', route: '/v1/me', status: 401, ip: '127.0.0.1' })
  t.type(requestLines[0]?.ms, 'number')

  // MQTT: connected and disconnected, with the reason and how long it lasted
  const phone = await connectUser(t, node, alice, 'phone', { keepalive: 1200 })
  await waitFor(() => log.lines.some(l => l.msg === 'client connected' && l.clientId === `${alice}:phone`), 'the connection to be logged')
  t.match(log.lines.find(l => l.msg === 'client connected'), { level: INFO, clientId: `${alice}:phone`, ip: '127.0.0.1', clean: true, keepalive: 1200 })
  await phone.publishAsync(`conv/${conv}/send`, text('m1', secretText), { qos: 1 })
  // a refused send: one line with its code and ids, not its text
  await phone.publishAsync(`conv/${conv}/send`, JSON.stringify({ client_msg_id: 'm2', type: 'shout', text: secretText }), { qos: 1 })
  await waitFor(() => log.lines.some(l => l.msg === 'send refused'), 'the refused send to be logged')
  t.match(log.lines.find(l => l.msg === 'send refused'), { level: INFO, user: alice, conv_id: conv, client_msg_id: 'm2', code: 'bad_request' })
  await phone.endAsync()
  await waitFor(() => log.lines.some(l => l.msg === 'client disconnected'), 'the disconnection to be logged')
  const gone = log.lines.find(l => l.msg === 'client disconnected')
  t.match(gone, { level: INFO, clientId: `${alice}:phone`, reason: 'disconnect' })
  t.type(gone?.ms, 'number')

  // a refused CONNECT: one line with the return code, never the password sent
  const refusedConnect = mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, {
    clientId: `${bob}:phone`, username: bob, password: badToken, protocolVersion: 4, reconnectPeriod: 0
  })
  t.teardown(() => refusedConnect.end(true))
  await new Promise<void>(resolve => refusedConnect.once('error', () => resolve()))
  await waitFor(() => log.lines.some(l => l.msg === 'connect refused'), 'the refused CONNECT to be logged')
  t.match(log.lines.find(l => l.msg === 'connect refused'), { level: INFO, clientId: `${bob}:phone`, returnCode: 4, ip: '127.0.0.1' })

  for (const line of log.raw) {
    if (line.includes(aliceToken) || line.includes(badToken) || line.includes(secretText)) {
      t.fail(`a log line holds a token or a message's text: ${line.slice(0, 200)}`)
    }
  }
})

t.test('debug level: one line per answered request', async (t) => {
  const log = capture()
  const node = await startNode(t, { store: 'pglite', logger: createLogger('debug', log.stream) })
  const alice = userId('alice')
  const res = await fetch(`http://127.0.0.1:${node.httpPort}/v1/me`, { headers: { authorization: `Bearer ${token(node, alice)}` } })
  t.equal(res.status, 200)
  await waitFor(() => log.lines.some(l => l.msg === 'request'), 'the request to be logged')
  const lines = log.lines.filter(l => l.route === '/v1/me')
  t.equal(lines.length, 1, 'one line, not Fastify\'s two')
  t.match(lines[0], { level: DEBUG, method: 'GET', status: 200, user: alice })
})

t.test('a client hammering past its limit writes one `rate limited` line, every refusal counted', async (t) => {
  const log = capture()
  const node = await startNode(t, { store: 'pglite', logger: createLogger('info', log.stream), env: { THREADLINE_HTTP_USER_RATE: '1', THREADLINE_HTTP_USER_BURST: '1' } })
  const alice = userId('alice')
  let limited = 0
  node.telemetry.on('limited', () => { limited++ })
  const headers = { authorization: `Bearer ${token(node, alice)}` }
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) statuses.push((await fetch(`http://127.0.0.1:${node.httpPort}/v1/me`, { headers })).status)
  t.equal(statuses.filter(s => s === 429).length, 19, 'the burst of 1 let one through')
  t.equal(limited, 19, 'every refusal is counted')
  await waitFor(() => log.lines.filter(l => l.msg === 'request refused').length === 19, 'every refused request to be logged')
  const lines = log.lines.filter(l => l.msg === 'rate limited')
  t.equal(lines.length, 1, 'one `rate limited` line for the 19 refusals of one user within 10 s')
  t.match(lines[0], { level: INFO, limit: 'http_user', user: alice, refusals: 1 })
})
