// The two ways in: MQTT over TCP, and MQTT over WebSocket at /mqtt on the HTTP port.
// Every socket of both ports counts against one budget (broker/socket-budget.ts); every
// connection gets the same two bounds before Aedes reads a byte of it: the packet size
// (broker/patches/packet-size.ts) and the bytes that may wait for a client that doesn't
// read (broker/patches/write-buffer.ts); and its client's real address when a trusted
// proxy names it (broker/client-address.ts), which on the TCP port it must.
import net from 'node:net'
import type { IncomingMessage, Server as HttpServer } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Aedes } from 'aedes'
import type { Telemetry } from '../core/telemetry.js'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { type ProxyTrust, setConnectionAddress } from './client-address.js'
import { PACKET_OVERHEAD_BYTES } from './config.js'
import { LogThrottle } from './log-throttle.js'
import { connectionClosed } from './lifecycle.js'
import type { Logger } from './logger.js'
import { ProxyHeaderMissing, readProxyHeader } from './proxy-protocol.js'
import type { SocketBudget } from './socket-budget.js'
import { limitPacketSize, type PacketLimits } from './patches/packet-size.js'
import { boundWriteBuffer, type WriteBufferBound } from './patches/write-buffer.js'
import { coalesceWrites } from './patches/coalesce-writes.js'

/**
 * Largest packet before the CONNECT is accepted. A CONNECT carries a clientId (≤ 129
 * chars), a username (≤ 64), a token (ours are a few hundred bytes, an identity
 * provider's a few KiB) and maybe a will on an open topic; 8 KiB holds them all while
 * an unauthenticated connection costs little.
 */
export const BEFORE_CONNECT_PACKET_BYTES = 8192

export interface ConnectionLimits {
  /** THREADLINE_MAX_PAYLOAD_BYTES */
  maxPayloadBytes: number
  /** THREADLINE_CLIENT_BUFFER_BYTES */
  clientBufferBytes: number
}

/** What both ports share: the socket budget and whose word on a client's address is taken. */
export interface EntryOptions {
  budget: SocketBudget
  trust: ProxyTrust
  /** THREADLINE_CONNECT_TIMEOUT_MS: also how long a trusted peer may take to send its PROXY header */
  connectTimeoutMs: number
  telemetry: Telemetry
}

/** Largest MQTT packet (remaining length) of an accepted client: a payload at the limit plus topic and header. */
export const maxPacketBytes = (limits: ConnectionLimits): number => limits.maxPayloadBytes + PACKET_OVERHEAD_BYTES

/**
 * What every connection of one listener shares: the packet limits and the write bound,
 * made once so that a connection keeps no closures of its own (an idle session would
 * hold them for its whole life).
 */
interface ConnectionBounds<C> {
  packets: PacketLimits
  writes: WriteBufferBound<C>
}

function boundsFor<C extends Duplex> (limits: ConnectionLimits, buffered: (conn: C) => number, log: Logger): ConnectionBounds<C> {
  const packetBytes = maxPacketBytes(limits)
  return {
    packets: { packetBytes, beforeConnectBytes: Math.min(BEFORE_CONNECT_PACKET_BYTES, packetBytes) },
    writes: { maxBytes: limits.clientBufferBytes, buffered, destroy: (conn, err) => conn.destroy(err), log }
  }
}

function handleConnection<C extends Duplex> (broker: Aedes, conn: C, req: IncomingMessage | undefined, bounds: ConnectionBounds<C>): void {
  coalesceWrites(conn)
  const client = broker.handle(conn, req)
  limitPacketSize(client, bounds.packets)
  boundWriteBuffer(client, bounds.writes)
}

export async function listenTcp (broker: Aedes, port: number, host: string, limits: ConnectionLimits, entry: EntryOptions, log: Logger): Promise<net.Server> {
  // a trusted proxy that sends no header does so on every connection: one line per 10 s
  const headerless = new LogThrottle()
  const refuseHeaderless = (peer: string | undefined): void => {
    entry.telemetry.emit('connectionRefused', { reason: 'proxy_header_missing' })
    const refused = headerless.hit()
    if (refused === null) return
    log.info({ part: 'connections', reason: 'proxy_header_missing', peer, refused }, 'connection refused: a trusted peer (THREADLINE_TRUST_PROXY) sent no PROXY header; have it send one on every MQTT connection (HAProxy: send-proxy-v2) or stop trusting it')
  }
  const bounds = boundsFor<net.Socket>(limits, socket => socket.writableLength, log)
  const server = net.createServer((socket) => {
    if (!entry.budget.admit(socket)) return
    if (!entry.trust.trusts(socket.remoteAddress)) return handleConnection(broker, socket, undefined, bounds)
    readProxyHeader(socket, entry.connectTimeoutMs).then((address) => {
      if (address !== null) setConnectionAddress(socket, address)
      handleConnection(broker, socket, undefined, bounds)
    }, (err: Error) => {
      if (err instanceof ProxyHeaderMissing) refuseHeaderless(socket.remoteAddress)
      else log.debug({ err: err.message, peer: socket.remoteAddress }, 'connection error')
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port, host, backlog: entry.budget.backlog }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}

export interface WebSocketEntry {
  /** Refuses new upgrades (503); open MQTT sessions are closed with the broker. */
  stopAccepting(): void
}

/** Routes HTTP upgrades of /mqtt to Aedes; any other upgrade is refused. */
export function attachWebSocket (broker: Aedes, http: HttpServer, limits: ConnectionLimits, entry: EntryOptions, log: Logger): WebSocketEntry {
  let accepting = true
  // every socket of the HTTP port: REST and long polls share the budget with MQTT
  http.on('connection', (socket: net.Socket) => { entry.budget.admit(socket) })
  const wss = new WebSocketServer({
    noServer: true,
    // Room for one whole packet at the MQTT limit (5 bytes of fixed header at most), so
    // that the MQTT check decides alike on TCP and WebSocket; the cap keeps a frame from
    // holding the heap before that check sees it.
    maxPayload: maxPacketBytes(limits) + 5,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false)
  })
  // the stream holds what ws has not taken yet; ws holds what its socket has not sent
  const bounds = boundsFor<WsStream>(limits, stream => stream.writableLength + (stream[WEBSOCKET]?.bufferedAmount ?? 0), log)
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== '/mqtt') return refuse(socket, '404 Not Found')
    if (!accepting) return refuse(socket, '503 Service Unavailable')
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws)
      stream.on('error', (err) => log.debug({ err }, 'websocket stream error'))
      const address = entry.trust.forwardedAddress(req)
      if (address !== undefined) setConnectionAddress(stream, address)
      // the budget's listener is on the socket under the WebSocket: the MQTT connection is the stream
      stream.on('close', streamClosed)
      ;(stream as WsStream)[WEBSOCKET] = ws
      handleConnection(broker, stream as WsStream, req, bounds)
    })
  })
  return { stopAccepting: () => { accepting = false } }
}

const WEBSOCKET = Symbol('threadline.websocket')
type WsStream = Duplex & { [WEBSOCKET]?: { readonly bufferedAmount: number } }

function streamClosed (this: Duplex): void {
  connectionClosed(this)
}

function refuse (socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
}
