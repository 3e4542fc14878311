// Works around Aedes 1.2's SUBSCRIBE (lib/handlers/subscribe.js): it reads the retained
// messages with `persistence.createRetainedStreamCombi(topics).pipe(…)`, and .pipe()
// passes no errors on. With Redis failing (a timed-out HSCAN, a dropped connection) the
// stream emits 'error' with no listener, and an unheard 'error' ends the whole node.
// Patched: the stream's error is heard and logged (the stream destroys itself, as any
// errored Readable does), so that SUBSCRIBE simply gets no retained messages; the
// connection and the node stay up.
// test/broker/patches/retained-stream-errors.test.ts fails if Aedes starts handling it.
import type { Readable } from 'node:stream'
import type { Logger } from '../logger.js'

interface RetainedSource { createRetainedStreamCombi(patterns: string[]): Readable }

export function survivingRetainedStreamErrors (persistence: RetainedSource, log: Logger): void {
  const create = persistence.createRetainedStreamCombi.bind(persistence)
  persistence.createRetainedStreamCombi = (patterns) => {
    const stream = create(patterns)
    stream.on('error', (err: Error) => {
      log.warn({ err: err.message, topics: patterns.slice(0, 10) }, 'retained messages not read (Redis failing): the SUBSCRIBE gets none')
    })
    return stream
  }
}
