// The streams a command talks through: process.std* in the bin, so that the commands
// themselves never reach for globals.
import type { Readable, Writable } from 'node:stream'

export interface Io {
  readonly stdin: Readable & { isTTY?: boolean }
  readonly stdout: Writable
  readonly stderr: Writable
  /** a line of output (what scripts read) */
  out(line: string): void
  /** a line of commentary for people (stderr: never mixed into what scripts read) */
  note(line: string): void
}

export function processIo (): Io {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    out: line => { process.stdout.write(line + '\n') },
    note: line => { process.stderr.write(line + '\n') }
  }
}

/** --json output: one object per line, so that `jq` or a line reader can take it. */
export const jsonLine = (value: unknown): string => JSON.stringify(value)
