// Run by memory-outgoing.test.ts under node:test (the runner aedes-persistence's own suite
// is written for): the library's shared persistence suite against its memory persistence
// with the outgoing methods taken over by broker/patches/memory-outgoing.ts.
import { createRequire } from 'node:module'
import { test } from 'node:test'
import { MemoryQueues } from '../../../broker/patches/memory-outgoing.js'

const require = createRequire(import.meta.url)
const fromAedes = createRequire(require.resolve('aedes'))
const memory = fromAedes('aedes-persistence') as () => object
const abstractPersistence = createRequire(fromAedes.resolve('aedes-persistence'))('./abstract.js') as (opts: object) => void

abstractPersistence({
  test,
  testAsync: true,
  persistence: () => {
    const persistence = memory()
    new MemoryQueues(() => {}).install(persistence)
    return persistence
  }
})
