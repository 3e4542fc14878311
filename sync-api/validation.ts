// Request validation with TypeBox's compiler, the engine that already checks MQTT sends
// (schemas/validate.ts), instead of Fastify's default Ajv. Ajv as Fastify configures it
// coerces body types (`{"title": 5}` would pass as "5"); here a body is checked as sent,
// and only query strings and path params, which are text by nature, get their integers
// parsed, strictly ("1.5" stays a string and fails `integer`).
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify'
import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { ID_PATTERN, QUEUE_ID_PATTERN, ThreadlineError, UUID_PATTERN } from '../schemas/index.js'

type JsonSchema = { type?: unknown, default?: unknown, properties?: Record<string, JsonSchema> }

const INTEGER_TEXT = /^-?\d{1,16}$/

/** Integers parsed and top-level defaults filled, for flat objects (query strings, params). */
function textToTyped (schema: JsonSchema): (value: unknown) => unknown {
  const props = Object.entries(schema.properties ?? {})
  return (value) => {
    if (typeof value !== 'object' || value === null) return value
    const out: Record<string, unknown> = { ...value }
    for (const [name, prop] of props) {
      const v = out[name]
      if (v === undefined) {
        if (prop.default !== undefined) out[name] = prop.default
      } else if (prop.type === 'integer' && typeof v === 'string' && INTEGER_TEXT.test(v)) {
        out[name] = Number(v)
      }
    }
    return out
  }
}

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = Compile(schema)
  const prepare = httpPart === 'querystring' || httpPart === 'params' ? textToTyped(schema as JsonSchema) : (v: unknown) => v
  return (input: unknown) => {
    const value = prepare(input)
    if (validator.Check(value)) return { value }
    return { error: validator.Errors(value) as unknown as FastifySchemaValidationError[] }
  }
}

/** For a route whose body another validator owns (see routes/messages.ts). */
export function bodyUnchecked (compiler: FastifySchemaCompiler<TSchema>): FastifySchemaCompiler<TSchema> {
  return (route) => route.httpPart === 'body' ? (value: unknown) => ({ value }) : compiler(route)
}

interface ValidationIssue {
  keyword?: string
  instancePath?: string
  message?: string
  params?: Record<string, unknown>
}

function fieldName (part: string, instancePath: string): string {
  const steps = instancePath.split('/').slice(1).map(s => /^\d+$/.test(s) ? `[${s}]` : `.${s}`)
  return part + steps.join('')
}

// the id patterns in words: a regex is not a clear message
const PATTERN_WORDS: Record<string, string> = {
  [UUID_PATTERN]: 'a UUID',
  [ID_PATTERN]: '1–64 chars of [A-Za-z0-9_.-]',
  [QUEUE_ID_PATTERN]: 'a queue id (43 chars of [A-Za-z0-9_-], as POST /v1/events/queue gave it)'
}

/** One clear sentence naming the field, from the first issue found. */
export function describeIssue (issues: readonly ValidationIssue[], part: string): string {
  // a union's own "must match a schema in anyOf" says less than the branch issues before
  // it, and so does the "schema is false" (keyword `boolean`) of a field no schema allows
  const issue = issues.find(i => i.keyword !== 'anyOf' && i.keyword !== 'boolean') ?? issues[0]
  if (issue === undefined) return `${part} is not valid`
  const field = fieldName(part, issue.instancePath ?? '')
  const params = issue.params ?? {}
  const missing = (params.requiredProperties as string[] | undefined)?.[0] ?? params.missingProperty
  if (issue.keyword === 'required' && typeof missing === 'string') return `${field}.${missing} is required`
  if (issue.keyword === 'pattern' && typeof params.pattern === 'string' && PATTERN_WORDS[params.pattern] !== undefined) {
    return `${field} must be ${PATTERN_WORDS[params.pattern]}`
  }
  const extra = (params.additionalProperties as string[] | undefined)?.[0]
  if (issue.keyword === 'additionalProperties' && typeof extra === 'string') return `${field}.${extra} is not a known field`
  if (issue.keyword === 'minProperties' && typeof params.limit === 'number') return `${field} must have at least ${params.limit} field${params.limit === 1 ? '' : 's'}`
  if (issue.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    return `${field} must be one of ${params.allowedValues.map(v => JSON.stringify(v)).join(', ')}`
  }
  return `${field} ${issue.message ?? 'is not valid'}`
}

/** Fastify's schemaErrorFormatter: validation failures become catalog errors at once. */
export function schemaErrorFormatter (issues: FastifySchemaValidationError[], part: string): Error {
  return new ThreadlineError('bad_request', describeIssue(issues as ValidationIssue[], part))
}
