// The REST sidecar as the SDK calls it: JSON in and out, the bearer token on every request,
// one retry with a fresh token after a 401, and every failure as a ThreadlineApiError.
import type { Auth } from './auth.js'
import type { OutboxEntry } from './types.js'

/** A failed HTTP call: `status` 0 when the server could not be reached at all. */
export class ThreadlineApiError extends Error {
  /** `retryAfterMs`: how long the server asked to wait (a 429's `retry_after_ms`) */
  constructor (readonly status: number, readonly code: string, message: string, readonly retryAfterMs?: number) {
    super(message)
    this.name = 'ThreadlineApiError'
  }

  /** Worth trying again later: the network, or a server that said so (503, 5xx). */
  get retryable (): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500
  }
}

/** A send the server refused (outbox status `failed`): `code` is its error code. */
export class ThreadlineSendError extends Error {
  readonly code: string
  constructor (readonly entry: OutboxEntry) {
    super(`the server refused the send: ${entry.error?.code ?? 'failed'}: ${entry.error?.message ?? ''}`)
    this.name = 'ThreadlineSendError'
    this.code = entry.error?.code ?? 'failed'
  }
}

export interface RequestOptions {
  body?: unknown
  query?: Record<string, string | number | undefined>
  signal?: AbortSignal
}

export class HttpApi {
  readonly base: string

  constructor (base: string, readonly auth: Auth) {
    this.base = base.replace(/\/+$/, '')
  }

  async request<T> (method: string, path: string, options: RequestOptions = {}): Promise<{ status: number, body: T }> {
    let token = this.auth.token
    let res = await this.#fetch(method, path, options, token)
    if (res.status === 401 && this.auth.canRefresh) {
      await res.body?.cancel()
      token = await this.auth.refresh(token)
      res = await this.#fetch(method, path, options, token)
    }
    const text = await res.text()
    let body: unknown = null
    if (text !== '') {
      try {
        body = JSON.parse(text)
      } catch {
        if (res.ok) throw new ThreadlineApiError(res.status, 'bad_response', `${method} ${path}: the answer is not JSON`)
      }
    }
    if (!res.ok) {
      const err = body as { code?: unknown, message?: unknown, retry_after_ms?: unknown } | null
      const code = typeof err?.code === 'string' ? err.code : `http_${res.status}`
      const message = typeof err?.message === 'string' ? err.message : `${method} ${path} answered ${res.status}`
      throw new ThreadlineApiError(res.status, code, message, retryAfterOf(err?.retry_after_ms, res.headers.get('retry-after')))
    }
    return { status: res.status, body: body as T }
  }

  async #fetch (method: string, path: string, options: RequestOptions, token: string): Promise<Response> {
    const url = new URL(this.base + path)
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
    const headers: Record<string, string> = { authorization: `Bearer ${token}` }
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    try {
      return await globalThis.fetch(url, {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {})
      })
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      throw new ThreadlineApiError(0, 'network', `${method} ${path}: ${(err as Error).message}`)
    }
  }
}

/** The wait a refusal asked for: the body's `retry_after_ms`, else `Retry-After` in seconds. */
function retryAfterOf (ms: unknown, header: string | null): number | undefined {
  if (typeof ms === 'number' && Number.isFinite(ms) && ms > 0) return ms
  const s = header === null ? NaN : Number(header)
  return Number.isFinite(s) && s > 0 ? s * 1000 : undefined
}
