// A flood of bare TCP connects (no CONNECT, no HTTP request) against a node in a child
// process, whose open files are counted in /proc/<pid>/fd: they stay within the socket
// budget (THREADLINE_MAX_CONNECTIONS + 512) however many come, and the node serves again
// once the CONNECT timeout has freed them.
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import net from 'node:net'
import t from 'tap'
import mqtt from 'mqtt'
import { SOCKET_HEADROOM } from '../../broker/open-files.js'
import { TEST_SECRET } from '../helpers/node.js'
import { createDatabase } from '../helpers/pg-database.js'
import { spawnServer } from '../helpers/spawn-node.js'
import { waitFor } from '../helpers/wait.js'
import { createTokenService } from '../../core/tokens.js'

const MAX_CONNECTIONS = 100
const BUDGET = MAX_CONNECTIONS + SOCKET_HEADROOM
const MQTT_FLOOD = 1500
const HTTP_FLOOD = 300

const openFiles = async (pid: number): Promise<number> => (await readdir(`/proc/${pid}/fd`)).length

t.test(`${MQTT_FLOOD + HTTP_FLOOD} bare sockets: the node holds at most ${BUDGET} of them, then serves again`, async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const server = await spawnServer(t, {
    env: {
      DATABASE_URL: db.url,
      THREADLINE_JWT_SECRET: TEST_SECRET,
      THREADLINE_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      THREADLINE_CONNECT_TIMEOUT_MS: '5000'
    }
  })
  const baseline = await openFiles(server.pid)

  const sockets: net.Socket[] = []
  let closed = 0
  let closedMqtt = 0
  t.teardown(() => { for (const s of sockets) s.destroy() })
  const open = (port: number): Promise<unknown> => {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => {}) // ECONNRESET for the ones the node refuses
    s.on('close', () => {
      closed++
      if (port === server.mqttPort) closedMqtt++
    })
    sockets.push(s)
    return Promise.race([once(s, 'connect'), once(s, 'close')])
  }
  // in waves the listen backlog (511) holds: past it the kernel drops SYNs and the client
  // retries seconds later, which would spread the flood over half a minute
  const ports = [...Array<number>(MQTT_FLOOD).fill(server.mqttPort), ...Array<number>(HTTP_FLOOD).fill(server.httpPort)]
  for (let i = 0; i < ports.length; i += 200) await Promise.all(ports.slice(i, i + 200).map(open))

  // everything past the budget is closed by the node as soon as it is accepted
  await waitFor(() => closed >= MQTT_FLOOD + HTTP_FLOOD - BUDGET, `the node to close ${MQTT_FLOOD + HTTP_FLOOD - BUDGET} sockets (${closed} so far)`, 20_000)
  let peak = 0
  for (let i = 0; i < 10; i++) peak = Math.max(peak, await openFiles(server.pid))
  t.ok(peak - baseline <= BUDGET, `the node holds ${peak - baseline} more files than idle (budget ${BUDGET})`)
  t.ok(server.output.some(l => l.includes('sockets refused: too many open on the MQTT and HTTP ports')), 'a warning says so')

  // the MQTT ones never sent a CONNECT: the timeout frees them, and a client gets in
  await waitFor(() => closedMqtt === MQTT_FLOOD, `the CONNECT timeout to free the silent MQTT sockets (${closedMqtt} closed)`, 20_000)
  const tokens = createTokenService(TEST_SECRET)
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: 'alice:phone', username: 'alice', password: tokens.sign({ sub: 'alice' }, 600), protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => client.endAsync(true))
  t.ok(client.connected, 'a real client connects after the flood')
  const ready = await fetch(`http://127.0.0.1:${server.httpPort}/readyz`)
  t.equal(ready.status, 200, 'and HTTP answers')
})
