// The one error catalog (DESIGN.md §3 and §6). MQTT error events and HTTP replies both
// take their code and status from here; docs/protocol.md documents every code (a test
// checks that).
import Type from 'typebox'

export const errorStatus = {
  bad_request: 400,
  /** a GET /v1/sync cursor this database can no longer answer: sync again without one */
  cursor_expired: 400,
  unauthorized: 401,
  forbidden: 403,
  not_member: 403,
  not_found: 404,
  queue_expired: 410,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  /** a fault of ours, logged; never carries details */
  internal: 500
} as const

export type ErrorCode = keyof typeof errorStatus
export const ERROR_CODES = Object.keys(errorStatus) as ErrorCode[]
export const ErrorCodeSchema = Type.Unsafe<ErrorCode>({ type: 'string', enum: ERROR_CODES })

export const ErrorBody = Type.Object({
  code: ErrorCodeSchema,
  message: Type.String(),
  /** rate_limited: how long to wait before trying again (HTTP also says it in Retry-After, in seconds) */
  retry_after_ms: Type.Optional(Type.Integer({ minimum: 1 }))
})
export type ErrorBody = Type.Static<typeof ErrorBody>

/** A rejection that carries its catalog code to the MQTT error event or HTTP reply. */
export class ThreadlineError extends Error {
  readonly statusCode: number
  constructor (readonly code: ErrorCode, message: string) {
    super(message)
    this.name = 'ThreadlineError'
    this.statusCode = errorStatus[code]
  }

  toBody (): ErrorBody {
    return { code: this.code, message: this.message }
  }
}
