// Every failure the CLI reports is one line on stderr and an exit code, never a stack trace:
// a script can branch on the code, a person can act on the line.

/** Exit codes: 0 done, 1 the server refused or could not be reached, 2 the command line was wrong. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

export class CliError extends Error {
  constructor (message: string, readonly exitCode: number = EXIT.failed) {
    super(message)
    this.name = 'CliError'
  }
}

/** A mistake on the command line or in the environment (bad flag, missing token). */
export class UsageError extends CliError {
  constructor (message: string) {
    super(message, EXIT.usage)
    this.name = 'UsageError'
  }
}

/** Node's codes for "nothing answered there": what a wrong --url or a stopped server looks like. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET'])

function networkCode (err: unknown): string | undefined {
  // fetch() wraps the socket's error: TypeError('fetch failed', { cause: { code } })
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && UNREACHABLE.has(code)) return code
  }
  return undefined
}

interface HttpFailure { status: number, code: string, message: string }

/** The SDK's HTTP errors carry the answer's status and catalog code; read them by shape. */
function httpFailure (err: unknown): HttpFailure | undefined {
  if (!(err instanceof Error)) return undefined
  const e = err as Error & { status?: unknown, statusCode?: unknown, code?: unknown }
  const status = typeof e.status === 'number' ? e.status : e.statusCode
  if (typeof status !== 'number' || typeof e.code !== 'string') return undefined
  return { status, code: e.code, message: e.message }
}

/** One line saying what went wrong, for anything a command may throw. */
export function describeError (err: unknown, url: string): string {
  if (err instanceof CliError) return err.message
  const http = httpFailure(err)
  const code = networkCode(err)
  // the SDK's HTTP errors say status 0 when no answer came at all
  if (code !== undefined || http?.status === 0) return `cannot reach the server at ${url}${code !== undefined ? ` (${code})` : ''}; is it running, and is --url / THREADLINE_URL right?`
  // the SDK's refusal of a connection for its credentials (CONNACK 4/5, HTTP 401)
  if (err instanceof Error && err.name === 'AuthRefused') return `the server refused the token (${err.message}); get a fresh one and pass it with --token or THREADLINE_TOKEN`
  if (http !== undefined) {
    const detail = `${http.code}: ${http.message}`
    if (http.status === 401) return `the server refused the token (${detail}); get a fresh one and pass it with --token or THREADLINE_TOKEN`
    if (http.status === 403) return `not allowed (${detail})`
    if (http.status === 404) return `not found (${detail})`
    return `the server answered ${http.status} (${detail})`
  }
  // AbortSignal.timeout() of a request that got no answer
  if (err instanceof Error && err.name === 'TimeoutError') return `the server at ${url} did not answer in time (--timeout)`
  return err instanceof Error ? err.message : String(err)
}
