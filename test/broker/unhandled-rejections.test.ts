// broker/unhandled-rejections.ts (installed by broker/main.ts): a rejection nobody listens
// to is logged at error with its stack, and the process keeps running.
import { Writable } from 'node:stream'
import { setImmediate as nextTurn } from 'node:timers/promises'
import t from 'tap'
import { createLogger } from '../../broker/logger.js'
import { logUnhandledRejections } from '../../broker/unhandled-rejections.js'

function capture (): { lines: Array<Record<string, unknown>>, stream: Writable } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return { lines, stream }
}

t.test('a rejection nobody listens to is logged at error with its stack, and the process goes on', async (t) => {
  const { lines, stream } = capture()
  const remove = logUnhandledRejections(createLogger('info', stream))
  t.teardown(remove)
  void Promise.reject(new Error('Command timed out'))
  void Promise.reject('a bare string') // eslint-disable-line prefer-promise-reject-errors
  await nextTurn()
  await nextTurn()
  t.equal(lines.length, 2, 'both logged')
  const [first, second] = lines as [Record<string, unknown>, Record<string, unknown>]
  t.equal(first.level, 50, 'at error')
  t.match(first.msg, /unhandled rejection/)
  t.match(first.err, { message: 'Command timed out', stack: /Error: Command timed out\n\s+at / }, 'with the stack')
  t.equal(second.reason, 'a bare string', 'a reason that is not an Error is logged as text')
  t.pass('still running')
})

t.test('removing the handler stops the logging', async (t) => {
  const { lines, stream } = capture()
  logUnhandledRejections(createLogger('info', stream))()
  // another listener keeps Node from ending this test process
  const swallow = (): void => {}
  process.on('unhandledRejection', swallow)
  t.teardown(() => { process.off('unhandledRejection', swallow) })
  void Promise.reject(new Error('unheard'))
  await nextTurn()
  await nextTurn()
  t.same(lines, [])
})
