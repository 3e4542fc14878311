// Parsers for commander's arguments and option values: a bad value stops the command
// before anything reaches the server, with a message naming what was expected.
import { InvalidArgumentError } from 'commander'
import { isId, isUuid } from '../../schemas/ids.js'

export function convIdArg (value: string): string {
  if (!isUuid(value)) throw new InvalidArgumentError('a conversation id is a UUID (see `threadline conversations`).')
  return value
}

export function userIdArg (value: string, previous: string[] = []): string[] {
  if (!isId(value)) throw new InvalidArgumentError(`"${value}" is not a user id (1–64 chars of [A-Za-z0-9_.-]).`)
  return [...previous, value]
}

/** A whole number from `min` up: a seq, a page size, a number of seconds. */
export function wholeNumber (min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = /^\d+$/.test(value) ? Number(value) : NaN
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`)
    return n
  }
}

export const seqArg = wholeNumber(1)
