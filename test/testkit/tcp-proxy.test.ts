// The TCP proxy the outage tests put between a node and Redis or PostgreSQL must let the
// test process end once it is closed. It used to reset sockets whose writable side it had
// just ended (piping a FIN on): Node 20 refuses that reset, keeps the socket's handle and
// spins in its exit cleanup forever, so redis-outage and redis-hang passed every assertion
// and then hung until tap's timeout, about one run in four. The second test pins that Node
// behaviour; the first checks a closed proxy with a half-closed connection lets go.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { withTimeout } from '../helpers/wait.js'

const proxyModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/tcp-proxy.ts')

// a child process: an echo server behind the proxy, a client that half-closes its side
// (so the proxy ends its upstream socket's writable side), then the proxy is closed
const child = `
import net from 'node:net'
import { startTcpProxy } from ${JSON.stringify(proxyModule)}
const teardowns = []
// allowHalfOpen: the server keeps its side open after the client's FIN, as Redis does
// while it answers a QUIT
const server = net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.on('data', d => s.write(d)) })
await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
const proxy = await startTcpProxy({ teardown: fn => teardowns.push(fn) }, { host: '127.0.0.1', port: server.address().port })
const client = net.connect(proxy.port, '127.0.0.1')
client.on('error', () => {})
await new Promise(resolve => client.once('connect', resolve))
client.write('ping')
await new Promise(resolve => client.once('data', resolve))
client.end()
await new Promise(resolve => setTimeout(resolve, 100)) // the FIN travels through the proxy
await proxy.close()
client.destroy()
server.close()
console.log('closed')
`

t.test('a closed proxy leaves nothing that keeps the process alive, half-closed connections included', async (t) => {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  t.teardown(() => { proc.kill('SIGKILL') })
  const code = await withTimeout(new Promise<number | null>(resolve => proc.on('exit', code => resolve(code))), 'the child process to exit by itself', 15_000)
  t.match(out, /closed/, 'the child closed the proxy')
  t.equal(code, 0, 'and then ended on its own')
})

// The Node behaviour the proxy works around: when it changes (a fixed Node), this test
// fails and the workaround in tcp-proxy.ts can go.
const resetWhileShutting = `
import net from 'node:net'
const server = net.createServer((s) => { s.on('error', () => {}); s.resume() })
await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
const c = net.connect(server.address().port, '127.0.0.1')
c.on('error', (e) => console.log(e.code))
await new Promise(resolve => c.once('connect', resolve))
c.end()
c.resetAndDestroy()
await new Promise(resolve => setTimeout(resolve, 100))
server.close()
console.log('closed')
`

t.test('Node 20: resetting a socket whose shutdown is pending fails (EINVAL) and the process never exits', async (t) => {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', resetWhileShutting], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  t.teardown(() => { proc.kill('SIGKILL') })
  await withTimeout(new Promise<void>(resolve => proc.stdout.on('data', () => { if (out.includes('closed')) resolve() })), 'the child to close its server', 15_000)
  t.match(out, /EINVAL/, 'the reset is refused')
  const exited = await Promise.race([
    new Promise<boolean>(resolve => proc.on('exit', () => resolve(true))),
    new Promise<boolean>(resolve => setTimeout(() => resolve(false), 3000))
  ])
  t.notOk(exited, 'the process is still alive 3 s after everything was closed')
})
