// Reconnect delays: exponential with full jitter (each delay uniform in [0, ceiling), the
// ceiling doubling per failed attempt up to a bound), so clients cut off together by one
// outage come back spread out instead of in waves.
import type { BackoffOptions } from './types.js'

export const BACKOFF_DEFAULTS = { minMs: 500, maxMs: 30_000 } as const

/** The delay before retry number `attempt` (0 for the first retry after a failure). */
export function backoffDelay (attempt: number, options: BackoffOptions = {}): number {
  const minMs = options.minMs ?? BACKOFF_DEFAULTS.minMs
  const maxMs = Math.max(minMs, options.maxMs ?? BACKOFF_DEFAULTS.maxMs)
  const random = options.random ?? Math.random
  // 2 ** attempt overflows to Infinity long after it passed any sane maxMs: min() caps it
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt))
  const r = Math.min(Math.max(random(), 0), 1)
  return Math.floor(r * ceiling)
}
