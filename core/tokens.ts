// HS256 JWTs (DESIGN.md §2) through fast-jwt, Fastify's JWT library.
import { createSigner, createVerifier } from 'fast-jwt'
import { isId } from '../schemas/ids.js'
import { unstorableReason } from '../schemas/storable.js'
import { serviceKey } from './services.js'

/** DESIGN.md §2: what a token may do */
export type Role = 'user' | 'integrator' | 'admin'

export interface TokenClaims {
  sub: string
  name: string | null
  role: Role
  /** epoch seconds */
  exp: number
}

export const ROLES: readonly Role[] = ['user', 'integrator', 'admin']

const BEARER = /^Bearer +([A-Za-z0-9_.~+/=-]+) *$/i

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or null. */
export function bearerToken (authorization: string | undefined): string | null {
  return BEARER.exec(authorization ?? '')?.[1] ?? null
}
export const MAX_NAME_LENGTH = 128

export class TokenError extends Error {
  constructor (message: string, readonly expired = false) {
    super(message)
    this.name = 'TokenError'
  }
}

export interface TokenService {
  sign(claims: { sub: string, name?: string, role?: Role }, ttlS: number): string
  verify(token: string): TokenClaims
}

export interface TokenOptions {
  /** when set, every token must carry this `iss` (tokens of an identity provider), and ours get it */
  issuer?: string | null
  /** when set, every token must carry this `aud`, and ours get it */
  audience?: string | null
}

/**
 * The one rule for what a token may claim, run when signing (the token CLI) and when
 * verifying (CONNECT, HTTP): a token we sign is never one we then refuse.
 */
export function checkClaims (claims: { sub: unknown, name?: unknown, role?: unknown }): void {
  const { sub, name, role } = claims
  if (typeof sub !== 'string' || !isId(sub)) throw new TokenError('user id must be 1–64 chars of [A-Za-z0-9_.-] (the sub claim)')
  if (role !== undefined && !ROLES.includes(role as Role)) throw new TokenError(`role must be one of ${ROLES.join(', ')}`)
  // the name becomes users.display_name: PostgreSQL text holds neither U+0000 nor lone surrogates
  if (name !== undefined && (typeof name !== 'string' || name.length > MAX_NAME_LENGTH || unstorableReason(name) !== null)) {
    throw new TokenError(`name must be a string of at most ${MAX_NAME_LENGTH} chars, without U+0000 or unpaired surrogates`)
  }
}

export function createTokenService (secret: string, opts: TokenOptions = {}): TokenService {
  const issuer = opts.issuer ?? undefined
  const audience = opts.audience ?? undefined
  const verifier = createVerifier({
    key: secret,
    algorithms: ['HS256'],
    requiredClaims: ['sub', 'exp', ...(issuer !== undefined ? ['iss'] : []), ...(audience !== undefined ? ['aud'] : [])],
    ...(issuer !== undefined ? { allowedIss: issuer } : {}),
    ...(audience !== undefined ? { allowedAud: audience } : {}),
    cache: 1000
  })
  return {
    sign (claims, ttlS) {
      checkClaims(claims)
      const signer = createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlS * 1000, ...(issuer !== undefined ? { iss: issuer } : {}), ...(audience !== undefined ? { aud: audience } : {}) })
      return signer({ sub: claims.sub, role: claims.role ?? 'user', ...(claims.name !== undefined ? { name: claims.name } : {}) })
    },
    verify (token) {
      let payload: Record<string, unknown>
      try {
        payload = verifier(token) as Record<string, unknown>
      } catch (err) {
        throw verifyError(err)
      }
      const { sub, name, role, exp } = payload
      if (typeof exp !== 'number') throw new TokenError('token exp must be a number')
      try {
        checkClaims({ sub, name, role })
      } catch (err) {
        throw new TokenError(`token ${(err as Error).message}`)
      }
      return { sub: sub as string, name: (name as string | undefined) ?? null, role: (role as Role | undefined) ?? 'user', exp }
    }
  }
}

function verifyError (err: unknown): TokenError {
  const { code, message } = err as { code?: string, message?: string }
  switch (code) {
    case 'FAST_JWT_EXPIRED': return new TokenError('token expired', true)
    // fast-jwt names the claim (sub, exp, iss or aud) in its message
    case 'FAST_JWT_MISSING_REQUIRED_CLAIM': return new TokenError(`token lacks a required claim: ${message ?? ''}`)
    default: {
      const claim = /\b(iss|aud) claim/.exec(message ?? '')?.[1]
      return new TokenError(claim !== undefined ? `token ${claim} is not the configured one` : 'token is not valid')
    }
  }
}

/** "90s", "15m", "1h", "7d" → seconds */
export function parseTtl (text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text)
  if (!m) throw new TokenError(`--ttl must look like 90s, 15m, 1h or 7d, got ${JSON.stringify(text)}`)
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd']
  const n = Number(m[1]) * unit
  if (n <= 0) throw new TokenError('--ttl must be positive')
  return n
}

/** The node's token service (verify at CONNECT and on HTTP, sign for the CLI and tests). */
export const TOKENS_SERVICE = serviceKey<TokenService>('tokens')
