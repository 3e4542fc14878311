// broker/patches/memory-outgoing.ts takes over the outgoing methods of aedes' in-memory
// persistence. These fail when an upgrade changes what that relies on.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { OUTGOING_METHODS } from '../../../broker/patches/memory-outgoing.js'

const require = createRequire(import.meta.url)
const fromAedes = createRequire(require.resolve('aedes'))

const outgoingMethods = (obj: object): string[] =>
  Object.getOwnPropertyNames(Object.getPrototypeOf(obj)).filter(name => name.startsWith('outgoing')).sort()

t.test('the memory persistence Aedes uses has exactly the outgoing methods we take over', async (t) => {
  const memory = fromAedes('aedes-persistence') as () => { asyncPersistence: object }
  const persistence = memory()
  const ours = [...OUTGOING_METHODS].sort()
  t.same(outgoingMethods(persistence), ours, 'the callback layer Aedes calls')
  t.same(outgoingMethods(persistence.asyncPersistence), ours, 'the implementation behind it: a new outgoing method would bypass our queues')
})

t.test('aedes-persistence\'s own shared suite passes with our queues in place', async (t) => {
  const script = fileURLToPath(new URL('./memory-outgoing.conformance.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const timer = setTimeout(() => child.kill(), 60_000)
  const [code] = await new Promise<[number | null]>(resolve => child.on('exit', (c) => resolve([c])))
  clearTimeout(timer)
  const pass = Number(/^# pass (\d+)/m.exec(out)?.[1] ?? 0)
  t.equal(code, 0, `the suite passes (it exited ${code}; failures: ${out.split('\n').filter(l => l.startsWith('not ok')).join('; ') || 'none'})`)
  t.ok(pass >= 50, `its ${pass} tests ran (50 in aedes-persistence 11.0)`)
})
