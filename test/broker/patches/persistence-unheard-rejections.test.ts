// broker/patches/persistence-unheard-rejections.ts: aedes-persistence-redis sends some
// cleanup commands without awaiting them, and Aedes' CONNECT drops the promise of
// delWill(…).finally(…). With every command under a deadline, a Redis that hangs makes
// them reject with "Command timed out" and nobody listening. Real Redis behind a proxy.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { Aedes } from 'aedes'
import { Redis } from 'ioredis'
import { createBrokerState } from '../../../broker/broker-state.js'
import { createLogger } from '../../../broker/logger.js'
import { UNAWAITED_PERSISTENCE_COMMANDS } from '../../../broker/patches/persistence-unheard-rejections.js'
import { redisBehindProxy } from '../../helpers/cluster.js'
import { unhandledRejections } from '../../helpers/unhandled.js'
import { withTimeout } from '../../helpers/wait.js'

const require = createRequire(import.meta.url)
const TIMEOUT_MS = 200

interface WillStore {
  putWill(client: { id: string }, packet: object): Promise<unknown>
  delWill(client: { id: string, brokerId: string }): Promise<unknown>
}

function source (pkg: string, file: string): string {
  return readFileSync(path.join(path.dirname(require.resolve(pkg)), file), 'utf8')
}

t.test('aedes-persistence-redis leaves exactly these commands unawaited, and Aedes drops delWill(…).finally(…) (what the patch is for)', async (t) => {
  // a statement that starts with a call on the connection: neither awaited nor returned
  const unawaited = new Set([...source('aedes-persistence-redis', 'asyncPersistence.js').matchAll(/^\s*(?:this\.#db|db)\.(\w+)\(/gm)].map(m => m[1]))
  t.same([...unawaited].sort(), [...UNAWAITED_PERSISTENCE_COMMANDS].sort())
  t.match(source('aedes', 'lib/handlers/connect.js'), /^\s*client\.broker\.persistence\.delWill\(client\)\s*\n\s*\.finally\(/m)
})

t.test('unpatched, a delWill while Redis hangs leaves two rejections unhandled', async (t) => {
  const unhandled = unhandledRejections(t)
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const conn = new Redis(proxy.urlFor(redisUrl), { commandTimeout: TIMEOUT_MS, autoResendUnfulfilledCommands: false })
  conn.on('error', () => {})
  t.teardown(() => conn.disconnect())
  await conn.ping()
  const persistence = (require('aedes-persistence-redis') as (opts: object) => WillStore)({ conn })
  proxy.hang()
  let settled = false
  // as Aedes' storeWill calls it
  void persistence.delWill({ id: 'alice:phone', brokerId: 'node' }).finally(() => { settled = true })
  await withTimeout(unhandled.reached(2), 'the unhandled rejections')
  t.ok(settled, 'Aedes\' CONNECT goes on (finally runs either way)')
  t.same(unhandled.reasons.map(reason => (reason as Error).message), ['Command timed out', 'Command timed out'],
    'the LREM nobody awaits, and the promise .finally() returns: without a listener, Node ends the process')
})

t.test('patched, delWill and putWill while Redis hangs leave none', async (t) => {
  const unhandled = unhandledRejections(t)
  const { redisUrl, proxy } = await redisBehindProxy(t)
  const log = createLogger('silent')
  const state = createBrokerState({ redisUrl: proxy.urlFor(redisUrl), offlineQueueMax: 1000, sessionExpiryS: 604800, redisTimeoutMs: TIMEOUT_MS, logLevel: 'silent' }, log)
  const broker = await Aedes.createBroker({ persistence: state.persistence, mq: state.mq })
  t.teardown(async () => {
    await new Promise<void>(resolve => broker.close(() => resolve()))
    await state.close()
  })
  const persistence = state.persistence as WillStore

  proxy.hang()
  const deleted = await withTimeout(persistence.delWill({ id: 'alice:phone', brokerId: broker.id }).finally(() => {}), 'delWill to settle')
  t.equal(deleted, null, 'delWill resolves with no will when Redis fails')
  await t.rejects(persistence.putWill({ id: 'alice:phone' }, { topic: 'a/will', payload: Buffer.from('gone'), qos: 0, retain: false }),
    { message: 'Command timed out' }, 'putWill still fails to its caller')
  // the unawaited LREM and RPUSH were sent before the awaited SET, so they have timed out by now
  await delay(TIMEOUT_MS)
  t.same(unhandled.reasons, [], 'no unhandled rejection')
  proxy.resume()
})
