// A loopback TCP proxy that a test can cut and restore, to take a real server (PostgreSQL,
// Redis) away from a node without stopping it: the node sees exactly what a network
// outage looks like while the server keeps its data. Two kinds of outage:
// - cut(): every open connection is reset and new ones are refused (a crashed server,
//   a firewall that rejects);
// - stall(): nothing gets through any more, and nothing says so (a partition, a
//   firewall that drops packets): connections stay open and new ones are accepted
//   but never answered;
// - hang(): a server that stops answering but keeps its connections (a Redis blocked by a
//   slow command, a stopped process): bytes in both directions are held, connections old
//   and new stay open, and resume() lets everything held flow on, as SIGCONT would;
// - holdReplies(): the server's bytes to the client are held while the client's still
//   reach the server (a send stored whose acknowledgement is lost in transit); resume()
//   lets them flow.
import net from 'node:net'

interface Teardownable { teardown(fn: () => unknown): void }

export interface TcpProxy {
  /** the port to give the node instead of the server's */
  readonly port: number
  /** connections accepted and forwarded so far */
  readonly forwarded: number
  /** Resets every open connection and refuses new ones until restore(). */
  cut(): void
  /** Stops all traffic without a word: open connections hang, new ones are never answered. */
  stall(): void
  /** Forwards new connections again; connections left from a stall are reset. */
  restore(): void
  /** Holds every byte both ways on open and new connections, keeping them open. */
  hang(): void
  /** Holds every byte from the server to the client on open and new connections; the client's bytes flow on. */
  holdReplies(): void
  /** Ends a hang: what was held is forwarded, and traffic flows again. */
  resume(): void
  /** `url` with its host:port pointing at this proxy (path and query kept) */
  urlFor(url: string): string
  close(): Promise<void>
}

/**
 * Starts a proxy on 127.0.0.1:0 to `target`. During an outage the listener stays bound,
 * so no other process can take the port before restore(); a refused connection is an
 * accepted one answered with a TCP reset at once.
 */
export async function startTcpProxy (t: Teardownable, target: { host: string, port: number }): Promise<TcpProxy> {
  const open = new Set<net.Socket>()
  let mode: 'forward' | 'cut' | 'stall' | 'hang' | 'replies' = 'forward'
  const pairs = new Set<{ client: net.Socket, upstream: net.Socket }>()
  const flow = ({ client, upstream }: { client: net.Socket, upstream: net.Socket }): void => {
    client.pipe(upstream)
    upstream.pipe(client)
  }
  const hold = ({ client, upstream }: { client: net.Socket, upstream: net.Socket }): void => {
    client.unpipe(upstream)
    upstream.unpipe(client)
    client.pause()
    upstream.pause()
  }
  const holdDown = ({ client, upstream }: { client: net.Socket, upstream: net.Socket }): void => {
    upstream.unpipe(client)
    upstream.pause()
  }
  let forwarded = 0

  const drop = (socket: net.Socket): void => {
    if (socket.destroyed) return
    // A socket whose writable side already ended (a pipe passed the peer's FIN on) can't
    // be reset: libuv refuses (EINVAL) and Node 20 then leaves its TCP handle open, marked
    // closing, which makes the process spin forever in its exit cleanup after every test
    // has passed. Such a socket is closed plainly.
    if (socket.writableEnded) socket.destroy()
    // RST rather than FIN: the peer sees ECONNRESET, as with a dead network path
    else socket.resetAndDestroy()
  }
  const track = (socket: net.Socket): void => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
  }

  const server = net.createServer((client) => {
    client.on('error', () => {})
    if (mode === 'cut') return drop(client)
    track(client)
    if (mode === 'stall') {
      client.pause() // held: read nothing, answer nothing
      return
    }
    forwarded++
    const upstream = net.connect(target)
    track(upstream)
    upstream.on('error', () => drop(client))
    client.on('error', () => drop(upstream))
    upstream.on('close', () => drop(client))
    client.on('close', () => drop(upstream))
    const pair = { client, upstream }
    pairs.add(pair)
    client.on('close', () => pairs.delete(pair))
    if (mode === 'hang') hold(pair)
    else if (mode === 'replies') {
      flow(pair)
      holdDown(pair)
    } else flow(pair)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as net.AddressInfo).port

  let closing: Promise<void> | null = null
  const proxy: TcpProxy = {
    port,
    get forwarded () { return forwarded },
    cut () {
      mode = 'cut'
      for (const socket of [...open]) drop(socket)
    },
    stall () {
      mode = 'stall'
      for (const socket of open) {
        socket.unpipe()
        socket.pause()
      }
    },
    restore () {
      if (mode === 'stall') for (const socket of [...open]) drop(socket)
      mode = 'forward'
    },
    hang () {
      mode = 'hang'
      for (const pair of pairs) hold(pair)
    },
    holdReplies () {
      mode = 'replies'
      for (const pair of pairs) holdDown(pair)
    },
    resume () {
      if (mode !== 'hang' && mode !== 'replies') return
      const held = mode
      mode = 'forward'
      // after holdReplies the client's side is still piped: piping it twice would double its bytes
      for (const pair of pairs) {
        if (held === 'hang') flow(pair)
        else pair.upstream.pipe(pair.client)
      }
    },
    urlFor (url: string) {
      const u = new URL(url)
      u.hostname = '127.0.0.1'
      u.port = String(port)
      return u.toString()
    },
    close () {
      return (closing ??= new Promise<void>((resolve) => {
        mode = 'cut'
        for (const socket of [...open]) drop(socket)
        server.close(() => resolve())
      }))
    }
  }
  t.teardown(() => proxy.close())
  return proxy
}
