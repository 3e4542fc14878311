// `Authorization: Bearer <token>` on every route of the context it is registered in
// (the /v1 prefix). The verified identity is decorated onto the request; the user's row
// is upserted the first time this process sees the user (or a new name for them), as
// MQTT CONNECT does, so conversations can name them.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Role } from '../../broker/identity.js'
import type { Store } from '../../broker/store/index.js'
import { bearerToken, TokenError, type TokenService } from '../../core/tokens.js'
import { ThreadlineError } from '../../schemas/index.js'
import { upsertTokenUser } from '../../core/users.js'

export interface HttpIdentity {
  readonly userId: string
  readonly role: Role
  readonly name: string | null
  /** token expiry, epoch ms */
  readonly expiresAt: number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth plugin before any handler of its context runs. */
    identity: HttpIdentity
  }
}

export interface AuthOptions {
  tokens: TokenService
  store: Store
  /** users remembered as already upserted; beyond it the oldest are forgotten (and upserted again) */
  seenMax?: number
}

/** Insertion-ordered and bounded, so a flood of distinct users cannot grow it without end. */
class SeenUsers {
  readonly #keys = new Set<string>()
  constructor (readonly max: number) {}
  has (key: string): boolean { return this.#keys.has(key) }
  add (key: string): void {
    this.#keys.add(key)
    if (this.#keys.size > this.max) this.#keys.delete(this.#keys.values().next().value as string)
  }
}

async function authPlugin (app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const seen = new SeenUsers(opts.seenMax ?? 10_000)
  app.decorateRequest('identity', null as unknown as HttpIdentity)

  app.addHook('onRequest', async (request, reply) => {
    const bearer = bearerToken(request.headers.authorization)
    if (bearer === null) {
      // RFC 6750 §3: a 401 for a bearer-protected resource names the scheme
      reply.header('www-authenticate', 'Bearer realm="threadline"')
      throw new ThreadlineError('unauthorized', 'an Authorization: Bearer <token> header is required')
    }
    let claims
    try {
      claims = opts.tokens.verify(bearer)
    } catch (err) {
      if (!(err instanceof TokenError)) throw err
      reply.header('www-authenticate', 'Bearer realm="threadline", error="invalid_token"')
      throw new ThreadlineError('unauthorized', err.message)
    }
    request.identity = { userId: claims.sub, role: claims.role, name: claims.name, expiresAt: claims.exp * 1000 }
    const key = `${claims.sub}\u0000${claims.name ?? ''}`
    if (!seen.has(key)) {
      await upsertTokenUser(opts.store, claims.sub, claims.name)
      seen.add(key)
    }
  })
}

export default fp(authPlugin, { name: 'threadline-auth', fastify: '5.x' })
