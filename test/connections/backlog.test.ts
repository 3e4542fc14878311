// The listen backlog: connections that arrive while the node's event loop is busy (a
// reconnect storm's first CONNECTs, a GC pause) wait in the kernel's accept queue. Node's
// default of 511 is far below a node's connection count; past it the kernel drops the
// handshakes, or answers them with SYN cookies that can fail later as ECONNRESET (what a
// 5,000-device storm on a busy machine met). The node is frozen with SIGSTOP, so nothing
// is accepted: every handshake that completes meanwhile was queued by the kernel.
import net from 'node:net'
import t from 'tap'
import { SOCKET_HEADROOM, listenBacklogCap } from '../../broker/open-files.js'
import { createTokenService } from '../../core/tokens.js'
import { TEST_SECRET } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { connectPacket, framePackets } from '../helpers/raw-mqtt.js'
import { spawnServer } from '../helpers/spawn-node.js'
import { waitFor } from '../helpers/wait.js'
import { startLoggedNode } from './helpers.js'

// above Node's default backlog of 511 and below the node's (1000 + 512); Linux caps every
// backlog at net.core.somaxconn (4096 by default since 5.4, 128 before), which a test can't raise
const SOMAXCONN = listenBacklogCap() ?? Infinity
const PER_PORT = Math.min(800, SOMAXCONN)

t.test(`${PER_PORT} connections per port arriving while the node is frozen are all queued, then served`, async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const node = await spawnServer(t, {
    env: { DATABASE_URL: db.url, THREADLINE_JWT_SECRET: TEST_SECRET, THREADLINE_MAX_CONNECTIONS: '1000', THREADLINE_CONNECT_IP_RATE: '0' }
  })
  process.kill(node.pid, 'SIGSTOP')
  // a frozen node can't stop: thaw it before the teardown of spawnServer signals it
  let frozen = true
  t.teardown(() => { if (frozen) process.kill(node.pid, 'SIGCONT') })

  const sockets: net.Socket[] = []
  t.teardown(() => { for (const s of sockets) s.destroy() })
  let handshakes = 0
  let errors = 0
  const open = (port: number): net.Socket => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => { handshakes++ })
    socket.on('error', () => { errors++ })
    sockets.push(socket)
    return socket
  }
  const mqttSockets = Array.from({ length: PER_PORT }, () => open(node.mqttPort))
  const httpSockets = Array.from({ length: PER_PORT }, () => open(node.httpPort))
  // Node's default backlog stops this at 2 × 512: the rest wait for a SYN retransmit that
  // a frozen node never makes room for
  const counted = (what: () => string) => (err: unknown): never => {
    t.comment(what())
    throw err
  }
  await waitFor(() => handshakes === 2 * PER_PORT, `the kernel to complete all ${2 * PER_PORT} handshakes for the frozen node`, 10_000)
    .catch(counted(() => `${handshakes} handshakes completed`))

  const tokens = createTokenService(TEST_SECRET)
  let connacks = 0
  for (const [i, socket] of mqttSockets.entries()) {
    framePackets(socket, (first, body) => { if (first >> 4 === 2 && body[1] === 0) connacks++ })
    const user = `bl${i}`
    socket.write(connectPacket({ clientId: `${user}:phone`, clean: true, username: user, password: tokens.sign({ sub: user }, 600), keepaliveS: 60 }))
  }
  let answered = 0
  for (const socket of httpSockets) {
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      text += chunk
      if (text.startsWith('HTTP/1.1 200')) {
        answered++
        text = 'counted'
      }
    })
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
  }
  process.kill(node.pid, 'SIGCONT')
  frozen = false

  await waitFor(() => connacks === PER_PORT, 'every queued MQTT connection to get CONNACK 0', 60_000)
    .catch(counted(() => `${connacks} CONNACKs`))
  await waitFor(() => answered === PER_PORT, 'every queued HTTP connection to get 200', 60_000)
    .catch(counted(() => `${answered} answers`))
  t.equal(errors, 0, 'no connection was reset')
})

t.test('the startup line names the listen backlog; one capped by net.core.somaxconn is said, with the sysctl that lifts it', async (t) => {
  for (const max of [1000, 10_000]) {
    const { lines } = await startLoggedNode(t, { THREADLINE_MAX_CONNECTIONS: String(max) })
    const asked = max + SOCKET_HEADROOM
    const up = lines.find(l => l.msg === 'threadline is up')
    t.equal(up?.listenBacklog, Math.min(asked, SOMAXCONN), `max ${max}: the backlog in effect`)
    const capped = lines.filter(l => l.msg.startsWith('listen backlog capped'))
    if (asked > SOMAXCONN) t.match(capped, [{ level: 30, listenBacklog: SOMAXCONN, asked, msg: new RegExp(`sysctl -w net.core.somaxconn=${asked}$`) }], `max ${max}: capped, and said once`)
    else t.same(capped, [], `max ${max}: nothing capped, nothing said`)
  }
})
