import type { TSchema, Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { ThreadlineError } from './errors.js'

export type Check<T> = (value: unknown) => T

/** Compiles a schema once into a function that returns the value or throws `bad_request`. */
export function compileCheck<S extends TSchema> (schema: S, what: string): Check<Static<S>> {
  const validator = Compile(schema)
  return (value: unknown) => {
    if (validator.Check(value)) return value as Static<S>
    const first = validator.Errors(value)[0]
    const where = first?.instancePath !== undefined && first.instancePath !== '' ? first.instancePath.slice(1).replaceAll('/', '.') + ' ' : ''
    throw new ThreadlineError('bad_request', `${what}: ${where}${first?.message ?? 'does not match the schema'}`)
  }
}
