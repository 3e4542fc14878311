// Ids the client makes and reads without node:crypto or Buffer, so the same code runs in
// browsers.

/**
 * A random UUID (v4). crypto.randomUUID exists only in secure contexts (https, localhost):
 * a page served over plain http from another host has getRandomValues alone.
 */
export function randomId (): string {
  const c = globalThis.crypto
  if (typeof c.randomUUID === 'function') return c.randomUUID()
  const b = c.getRandomValues(new Uint8Array(16))
  b[6] = (b[6]! & 0x0f) | 0x40
  b[8] = (b[8]! & 0x3f) | 0x80
  const hex = Array.from(b, x => x.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** The claims of a JWT, read without checking its signature (the server checks it). */
export function tokenClaims (token: string): { sub?: unknown, exp?: unknown } {
  const part = token.split('.')[1]
  if (part === undefined) throw new TypeError('the token is not a JWT (no payload part)')
  const b64 = part.replaceAll('-', '+').replaceAll('_', '/').padEnd(Math.ceil(part.length / 4) * 4, '=')
  try {
    return JSON.parse(atob(b64)) as { sub?: unknown, exp?: unknown }
  } catch {
    throw new TypeError('the token is not a JWT (its payload is not base64url JSON)')
  }
}

/** The user id a token names (its `sub`). */
export function tokenSubject (token: string): string {
  const { sub } = tokenClaims(token)
  if (typeof sub !== 'string' || sub === '') throw new TypeError('the token has no `sub` claim: it names no user')
  return sub
}
