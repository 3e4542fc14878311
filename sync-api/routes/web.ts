// The web chat page at `/` (clients/web/, bundled by web/bundle.ts). Public files: the
// token never reaches the server in a page request, it stays in the URL fragment or the
// paste box, and the page sends it as a bearer header like any other client.
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { ThreadlineError } from '../../schemas/index.js'
import { WEB_FILES, type WebBundle } from '../web/bundle.js'

/**
 * The page loads its own script and style and talks to this origin only (REST and the
 * MQTT WebSocket); nothing inline, no frames, no forms posted anywhere. MQTT.js keeps its
 * keepalive timer in a worker made from a blob (browsers throttle a background tab's own
 * timers to once a minute, which would let the connection time out): `worker-src blob:`.
 */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff'
}

export async function webRoutes (app: FastifyInstance, opts: { bundle: WebBundle }): Promise<void> {
  // only reply.sendFile: the routes below name each file, so nothing else under the out
  // dir is reachable and unknown paths keep answering the JSON 404
  await app.register(fastifyStatic, { root: opts.bundle.outDir, serve: false, suppressWarning: true })

  const serve = async (reply: FastifyReply, file: string): Promise<FastifyReply> => {
    try {
      await opts.bundle.ready()
    } catch (err) {
      reply.log.error({ err }, 'the web page could not be built')
      throw new ThreadlineError('unavailable', 'the web page could not be built; the server log says why')
    }
    // revalidated on every load (ETag), so a rebuilt page is picked up at once
    return reply.header('cache-control', 'no-cache').sendFile(file)
  }

  app.get('/', { schema: { hide: true } }, async (_request, reply) => await serve(reply.headers(PAGE_HEADERS), 'index.html'))
  for (const file of WEB_FILES.filter(f => f !== 'index.html')) {
    app.get(`/${file}`, { schema: { hide: true } }, async (_request, reply) => await serve(reply, file))
  }
}
