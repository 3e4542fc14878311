// HS256 JWTs (DESIGN.md §2) through fast-jwt, Fastify's JWT library.
import { createSigner, createVerifier } from 'fast-jwt'
import type { Role } from '../../broker/identity.js'
import { isId } from '../../schemas/ids.js'

export interface TokenClaims {
  sub: string
  name: string | null
  role: Role
  /** epoch seconds */
  exp: number
}

const ROLES: readonly Role[] = ['user', 'integrator', 'admin']

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

export function createTokenService (secret: string): TokenService {
  const verifier = createVerifier({ key: secret, algorithms: ['HS256'], requiredClaims: ['sub', 'exp'], cache: 1000 })
  return {
    sign (claims, ttlS) {
      if (!isId(claims.sub)) throw new TokenError('user id must be 1–64 chars of [A-Za-z0-9_.-]')
      const signer = createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlS * 1000 })
      return signer({ sub: claims.sub, role: claims.role ?? 'user', ...(claims.name !== undefined ? { name: claims.name } : {}) })
    },
    verify (token) {
      let payload: Record<string, unknown>
      try {
        payload = verifier(token) as Record<string, unknown>
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code === 'FAST_JWT_EXPIRED') throw new TokenError('token expired', true)
        throw new TokenError(code === 'FAST_JWT_MISSING_REQUIRED_CLAIM' ? 'token lacks sub or exp' : 'token is not valid')
      }
      const { sub, name, role, exp } = payload
      if (typeof sub !== 'string' || !isId(sub)) throw new TokenError('token sub must be 1–64 chars of [A-Za-z0-9_.-]')
      if (typeof exp !== 'number') throw new TokenError('token exp must be a number')
      if (role !== undefined && !ROLES.includes(role as Role)) throw new TokenError(`token role must be one of ${ROLES.join(', ')}`)
      if (name !== undefined && (typeof name !== 'string' || name.length > 128)) throw new TokenError('token name must be a string of at most 128 chars')
      return { sub, name: (name as string | undefined) ?? null, role: (role as Role | undefined) ?? 'user', exp }
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
