// Runs the `threadline` command line (clients/cli/threadline.mjs loads this through tsx):
// parses, runs one command, and turns every failure into one line on stderr and an exit
// code (errors.ts), never a stack trace.
import { CommanderError } from 'commander'
import { DEFAULT_URL } from './config.js'
import { CliError, EXIT, describeError } from './errors.js'
import { processIo } from './io.js'
import { buildProgram } from './program.js'

async function main (argv: string[]): Promise<number> {
  const io = processIo()
  const program = buildProgram(io)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return EXIT.ok
  } catch (err) {
    // commander already printed its own message (bad flag, missing argument) or the help
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage
    const url = program.opts<{ url?: string }>().url ?? DEFAULT_URL
    io.note(`threadline: ${describeError(err, url)}`)
    return err instanceof CliError ? err.exitCode : EXIT.failed
  }
}

// `threadline tail | head -1`: once the reader is gone there is nobody left to tell
process.stdout.on('error', err => {
  if ((err as NodeJS.ErrnoException).code === 'EPIPE') process.exit(EXIT.ok)
})
process.exit(await main(process.argv.slice(2)))
