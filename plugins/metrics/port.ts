// THREADLINE_METRICS_PORT: /metrics without a token on a port of its own, for a scraper
// on a private network (bind it to a private address: whoever reaches it reads the
// metrics). It serves /metrics and nothing else: the API, /v1 included, stays on the
// HTTP port behind its tokens.
import http from 'node:http'
import type net from 'node:net'
import type { Registry } from 'prom-client'
import { ThreadlineError } from '../../schemas/index.js'

export interface MetricsPort {
  readonly port: number
  close(): Promise<void>
}

function answerError (res: http.ServerResponse, err: ThreadlineError): void {
  res.writeHead(err.statusCode, { 'content-type': 'application/json; charset=utf-8' })
  res.end(JSON.stringify(err.toBody()))
}

export async function serveMetricsPort (registry: Registry, port: number, host: string): Promise<MetricsPort> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== '/metrics') return answerError(res, new ThreadlineError('not_found', 'this port serves GET /metrics only'))
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      return answerError(res, new ThreadlineError('bad_request', 'GET /metrics is the only request this port answers'))
    }
    registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType })
      res.end(req.method === 'HEAD' ? undefined : text)
    }, () => answerError(res, new ThreadlineError('internal', 'the metrics could not be collected')))
  })
  // a scraper keeps its connection open between scrapes: those must not hold a shutdown
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`THREADLINE_METRICS_PORT ${port} on ${host}: ${err.message}`)))
    server.listen(port, host, () => resolve())
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
}
