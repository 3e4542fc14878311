// The two ways in: MQTT over TCP, and MQTT over WebSocket at /mqtt on the HTTP port.
import net from 'node:net'
import type { IncomingMessage, Server as HttpServer } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Aedes } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Logger } from './logger.js'

export async function listenTcp (broker: Aedes, port: number, host: string): Promise<net.Server> {
  const server = net.createServer((socket) => broker.handle(socket))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
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
export function attachWebSocket (broker: Aedes, http: HttpServer, maxPayloadBytes: number, log: Logger): WebSocketEntry {
  let accepting = true
  const wss = new WebSocketServer({
    noServer: true,
    // MQTT packets carry their own framing; the cap keeps one frame from holding the heap
    maxPayload: maxPayloadBytes + 1024,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false)
  })
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== '/mqtt') return refuse(socket, '404 Not Found')
    if (!accepting) return refuse(socket, '503 Service Unavailable')
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws)
      stream.on('error', (err) => log.debug({ err }, 'websocket stream error'))
      broker.handle(stream, req)
    })
  })
  return { stopAccepting: () => { accepting = false } }
}

function refuse (socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
}
