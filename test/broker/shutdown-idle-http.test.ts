// A connection that opened and never sent a request (a browser's preconnect, a probe)
// must not hold a node's shutdown until Node's headers timeout (a minute): a rolling
// restart would stall on it.
import net from 'node:net'
import t from 'tap'
import { startNode } from '../helpers/node.js'
import { withTimeout } from '../helpers/wait.js'

t.test('close() ends with an idle HTTP connection open that never sent a request', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  const socket = net.connect(node.httpPort, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  const ended = new Promise<void>(resolve => socket.once('close', () => resolve()))
  const started = Date.now()
  await withTimeout(node.close(), 'the node to close', 15_000)
  t.ok(Date.now() - started < 15_000, `closed in ${Date.now() - started} ms`)
  await withTimeout(ended, 'the idle connection to be closed by the server', 5000)
})
