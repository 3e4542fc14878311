// An HTTP proxy in front of a node's HTTP port that can refuse WebSocket upgrades, as
// some corporate proxies and firewalls do: plain requests (the page, REST, long-polls)
// pass, `Upgrade: websocket` is answered 403 while blocked. A browser pointed at it sees
// exactly that network: the page loads, the WebSocket handshake fails. cut() takes the
// network away altogether, without the page doing anything (a device that lost signal).
import http from 'node:http'
import net from 'node:net'

interface Teardownable { teardown(fn: () => unknown): void }

export interface HttpProxy {
  /** http://127.0.0.1:<port>, the address to give the browser */
  readonly url: string
  /** upgrades refused so far */
  readonly refused: number
  blockWebSockets(): void
  allowWebSockets(): void
  /** Drops every connection, WebSockets included, and refuses new ones. */
  cut(): void
}

export async function startHttpProxy (t: Teardownable, target: { host: string, port: number }): Promise<HttpProxy> {
  let blocked = false
  let cut = false
  let refused = 0
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    const upstream = http.request({ ...target, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    res.on('close', () => upstream.destroy())
    req.pipe(upstream)
  })
  server.on('connection', (socket) => {
    if (cut) return socket.destroy()
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.on('upgrade', (req, socket, head) => {
    if (blocked) {
      refused++
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
      return
    }
    const upstream = net.connect(target, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`]
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`)
      upstream.write(lines.join('\r\n') + '\r\n\r\n')
      upstream.write(head)
      upstream.pipe(socket)
      socket.pipe(upstream)
    })
    sockets.add(upstream)
    upstream.on('close', () => { sockets.delete(upstream); socket.destroy() })
    upstream.on('error', () => socket.destroy())
    socket.on('error', () => upstream.destroy())
    socket.on('close', () => upstream.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    get refused () { return refused },
    blockWebSockets () { blocked = true },
    allowWebSockets () { blocked = false },
    cut () {
      cut = true
      for (const socket of sockets) socket.destroy()
    }
  }
}
