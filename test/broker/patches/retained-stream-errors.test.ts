// broker/patches/retained-stream-errors.ts: with Redis hung, the retained-message stream a
// SUBSCRIBE reads fails, and Aedes pipes it with no error listener: unpatched, that error
// ended the node (seen in test/cluster/redis-outage.test.ts once Redis commands got a
// timeout). Real Redis behind a proxy that hangs.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import type { Readable } from 'node:stream'
import t from 'tap'
import { Aedes } from 'aedes'
import { createBrokerState } from '../../../broker/broker-state.js'
import { createLogger } from '../../../broker/logger.js'
import { redisBehindProxy } from '../../helpers/cluster.js'
import { withTimeout } from '../../helpers/wait.js'

t.test('Aedes still reads retained messages through .pipe() with no error listener (what the patch is for)', async (t) => {
  const require = createRequire(import.meta.url)
  const subscribe = readFileSync(path.join(path.dirname(require.resolve('aedes')), 'lib/handlers/subscribe.js'), 'utf8')
  t.match(subscribe, /const stream = persistence\.createRetainedStreamCombi\(topics\)\s*\n\s*stream\.pipe\(/)
  t.notMatch(subscribe, /stream\.on\(['"]error['"]/)
})

t.test('a retained-message read that fails while Redis hangs ends the stream instead of the node', async (t) => {
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const state = createBrokerState({ redisUrl: proxy.urlFor(redisUrl), offlineQueueMax: 1000, sessionExpiryS: 604800, redisTimeoutMs: 200, logLevel: 'silent' }, createLogger('silent'))
  const broker = await Aedes.createBroker({ persistence: state.persistence, mq: state.mq })
  t.teardown(async () => {
    await new Promise<void>(resolve => broker.close(() => resolve()))
    await state.close()
  })
  const persistence = state.persistence as { createRetainedStreamCombi(patterns: string[]): Readable }

  const before: unknown[] = []
  for await (const packet of persistence.createRetainedStreamCombi(['#'])) before.push(packet)
  t.same(before, [], 'read while Redis answers: no retained messages')

  proxy.hang()
  const stream = persistence.createRetainedStreamCombi(['#'])
  const got: unknown[] = []
  stream.on('data', (p: unknown) => got.push(p))
  // unpatched, the stream's 'error' would be unheard and end this process right here
  await withTimeout(new Promise<void>(resolve => stream.once('close', () => resolve())), 'the failed stream to close', 10_000)
  t.ok(stream.errored, 'the read failed (Redis hangs)')
  t.same(got, [], 'and delivered nothing')
  proxy.resume()
  // the next read works again
  const after: unknown[] = []
  for await (const packet of persistence.createRetainedStreamCombi(['#'])) after.push(packet)
  t.same(after, [], 'reads work again once Redis answers')
})
