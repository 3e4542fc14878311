// GET /metrics in the Prometheus text format (prom-client): every series of this node,
// labelled `node`, plus Node's process and event-loop metrics (series.ts). Served on the
// HTTP port to bearer tokens with role `admin` (Prometheus' `authorization` scrape
// setting) and, with THREADLINE_METRICS_PORT, on a port of its own without a token (bind
// it to a private address). docs/operations.md "Metrics" lists every series.
import os from 'node:os'
import type { FastifyPluginAsync } from 'fastify'
import { ConfigError, type EnvReader } from '../../broker/config.js'
import { definePlugin, type PluginContext } from '../../broker/plugin.js'
import { serviceKey } from '../../core/services.js'
import { bearerToken, TokenError, TOKENS_SERVICE, type TokenClaims, type TokenService } from '../../core/tokens.js'
import { ThreadlineError } from '../../schemas/index.js'
import { serveMetricsPort, type MetricsPort } from './port.js'
import { nodeSeries, type NodeSeries } from './series.js'

export interface MetricsOptions {
  /** THREADLINE_NODE_ID: the `node` label; null → `<hostname>:<MQTT port>` */
  readonly nodeId: string | null
  /** THREADLINE_METRICS_PORT: null → /metrics is served on the HTTP port only */
  readonly port: number | null
  /** THREADLINE_METRICS_HOST: the metrics port's address (default loopback) */
  readonly host: string
}

/** What a node's metrics are, for tests: its registry, node label and metrics port. */
export interface NodeMetrics {
  readonly nodeId: string
  readonly registry: NodeSeries['registry']
  /** the metrics port once listening; null without THREADLINE_METRICS_PORT */
  readonly port: number | null
}
export const METRICS = serviceKey<NodeMetrics>('metrics')

const NODE_ID = /^[A-Za-z0-9_.:-]{1,128}$/
const HOST = /^[A-Za-z0-9.:-]+$/

function metricsConfig (env: EnvReader): MetricsOptions {
  const nodeId = env.text('THREADLINE_NODE_ID') ?? null
  if (nodeId !== null && !NODE_ID.test(nodeId)) throw new ConfigError('THREADLINE_NODE_ID', `must be 1–128 chars of [A-Za-z0-9_.:-], got ${JSON.stringify(nodeId)}`)
  const port = env.text('THREADLINE_METRICS_PORT') === undefined ? null : env.integer('THREADLINE_METRICS_PORT', 0, 0, 65535)
  const host = env.text('THREADLINE_METRICS_HOST')
  if (host !== undefined && !HOST.test(host)) throw new ConfigError('THREADLINE_METRICS_HOST', `is not a host name or address: ${JSON.stringify(host)}`)
  if (host !== undefined && port === null) throw new ConfigError('THREADLINE_METRICS_HOST', 'is set but THREADLINE_METRICS_PORT is not: set the port to serve /metrics there, or unset the host')
  return { nodeId, port, host: host ?? '127.0.0.1' }
}

/** `<hostname>:<MQTT port>`; with port 0 (tests) the broker's random id stands in for the port */
function defaultNodeId (ctx: PluginContext): string {
  return `${os.hostname()}:${ctx.config.mqttPort !== 0 ? ctx.config.mqttPort : ctx.broker.id}`
}

interface Running {
  readonly series: NodeSeries
  readonly port: MetricsPort | null
}

// what setup starts, per node (one process may run several in tests)
const running = new WeakMap<object, Running>()

/** Throws the 401 or 403 a scrape without an admin token gets. */
function checkAdmin (tokens: TokenService, authorization: string | undefined, setHeader: (value: string) => void): void {
  const bearer = bearerToken(authorization)
  if (bearer === null) {
    setHeader('Bearer realm="threadline"')
    throw new ThreadlineError('unauthorized', 'GET /metrics needs an Authorization: Bearer <token> header with an admin token')
  }
  let claims: TokenClaims
  try {
    claims = tokens.verify(bearer)
  } catch (err) {
    if (!(err instanceof TokenError)) throw err
    setHeader('Bearer realm="threadline", error="invalid_token"')
    throw new ThreadlineError('unauthorized', err.message)
  }
  if (claims.role !== 'admin') throw new ThreadlineError('forbidden', 'GET /metrics needs a token with role admin')
}

const metricsRoute = (ctx: PluginContext, series: NodeSeries): FastifyPluginAsync => async (app) => {
  const tokens = ctx.services.get(TOKENS_SERVICE)
  app.get('/metrics', {
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics of this node (text format); needs a token with role admin',
      security: [{ bearerAuth: [] }]
    }
  }, async (request, reply) => {
    checkAdmin(tokens, request.headers.authorization, (value) => reply.header('www-authenticate', value))
    const text = await series.registry.metrics()
    return reply.type(series.registry.contentType).send(text)
  })
}

export const metricsPlugin = definePlugin<MetricsOptions>({
  name: 'metrics',
  config: metricsConfig,
  async setup (ctx, options) {
    const nodeId = options.nodeId ?? defaultNodeId(ctx)
    const series = nodeSeries(ctx, nodeId)
    let port: MetricsPort | null = null
    try {
      if (options.port !== null) port = await serveMetricsPort(series.registry, options.port, options.host)
    } catch (err) {
      series.stop()
      throw err
    }
    running.set(ctx, { series, port })
    ctx.services.provide(METRICS, { nodeId, registry: series.registry, port: port?.port ?? null })
    if (port !== null) ctx.log.info({ host: options.host, port: port.port }, 'metrics port is up: /metrics without a token')
    return async () => {
      running.delete(ctx)
      series.stop()
      await port?.close()
    }
  },
  hooks (ctx) {
    const deliveries = running.get(ctx)?.series.deliveries
    if (deliveries === undefined) return {}
    // last in the chain (broker/plugins.ts), so it counts only what the hooks before it let through
    return {
      authorizeForward (_client, packet) {
        deliveries.count++
        return packet
      }
    }
  },
  http (ctx) {
    const series = running.get(ctx)?.series
    return series !== undefined ? metricsRoute(ctx, series) : async () => {}
  }
})
