// The limits over REST, as the plugin's sidecar-wide hooks (ThreadlinePlugin.http):
// - onRequest, on every /v1 request before authentication: per client address, so a
//   flood without a valid token is refused before any token is checked;
// - preHandler, after /v1's token check: per user and route (`http_user`), except the
//   routes that share a limit with MQTT: sends (`send`, the same bucket as
//   conv/<c>/send), typing and receipts, and the long-poll GET /v1/events (`poll`: a
//   client polls again as soon as a poll answers, so it needs more than other routes).
// Over a limit: 429 `rate_limited`, `Retry-After` in whole seconds (rounded up) and
// `retry_after_ms` in the body.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { SendService } from '../../core/messages/send-service.js'
import type { Limit } from './buckets.js'
import { RateLimited, type Limiter, type Subject } from './limiter.js'

export interface HttpLimits {
  readonly send: Limit | null
  readonly typing: Limit | null
  readonly receipts: Limit | null
  readonly httpIp: Limit | null
  readonly httpUser: Limit | null
  readonly poll: Limit | null
}

const V1 = '/v1/'

/** Routes with a limit of their own (most shared with MQTT), by `METHOD url` as Fastify names the route. */
function sharedLimits (limits: HttpLimits): Map<string, Limit | null> {
  return new Map([
    ['POST /v1/conversations/:id/messages', limits.send],
    ['POST /v1/conversations/:id/typing', limits.typing],
    ['POST /v1/conversations/:id/receipts', limits.receipts],
    ['GET /v1/events', limits.poll]
  ])
}

export function limitsHttp (limiter: Limiter, limits: HttpLimits, sends: Pick<SendService, 'refused'>): FastifyPluginAsync {
  const shared = sharedLimits(limits)
  const check = (reply: FastifyReply, limit: Limit, key: string, by: Subject, who: string, done: HookHandlerDoneFunction): void => {
    const answer = (wait: number): void => {
      if (wait === 0) return done()
      const err = new RateLimited(`too many requests (limit ${limit.name}): retry in ${wait} ms`, wait)
      // a send refused here never reaches the send service: counted with every other answered send
      if (limit === limits.send) sends.refused({ transport: 'http', since: performance.now() - reply.elapsedTime }, err)
      void reply.header('retry-after', String(Math.ceil(wait / 1000)))
      done(err)
    }
    const wait = limiter.check(limit, key, by, who)
    if (typeof wait === 'number') answer(wait)
    else wait.then(answer, done)
  }

  return async (app) => {
    const httpIp = limits.httpIp
    if (httpIp !== null) {
      app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
        if (!request.url.startsWith(V1)) return done()
        check(reply, httpIp, request.ip, 'ip', request.ip, done)
      })
    }
    app.addHook('preHandler', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      const url = request.routeOptions.url
      // identity: set by /v1's token check (undefined outside /v1)
      const userId = (request.identity as { userId?: string } | null | undefined)?.userId
      if (url === undefined || userId === undefined || !url.startsWith(V1)) return done()
      const route = `${request.method} ${url}`
      if (shared.has(route)) {
        const limit = shared.get(route) ?? null
        if (limit === null) return done()
        return check(reply, limit, userId, 'user', userId, done)
      }
      if (limits.httpUser === null) return done()
      check(reply, limits.httpUser, `${userId}:${route}`, 'user', userId, done)
    })
  }
}
