// mqtt-packet calls the debug package's `debug(…)` about ten times for every packet it
// parses or writes, and a call costs even with its namespace off: it allocates the call's
// rest-arguments array and runs the `enabled` getter. In the bench's max phase that was the
// largest single source of the broker's garbage (~11% of the bytes allocated) and ~1.5% of
// its CPU. This loads mqtt-packet, the copy Aedes imports, with a `debug` that hands each
// namespace that is off when the process starts a function that does nothing. A namespace
// on at start (DEBUG=mqtt-packet:*) keeps the real one; turning one on later with
// debug.enable() no longer reaches mqtt-packet. Only mqtt-packet sees the stand-in: the
// module cache gets the real debug back once mqtt-packet is loaded.
//
// A side-effect import that must come before Aedes is imported (broker/server.ts imports it
// first). An ES module importing mqtt-packet puts its main module in the CommonJS cache when
// the import graph is linked, before anything runs; the modules that call debug (the parser
// and the writer) are required by it only when it runs, so these load them first. Once
// they are loaded it changes nothing.
// test/broker/patches/quiet-mqtt-packet-debug.test.ts fails if mqtt-packet stops asking
// debug for its namespaces this way.
import { createRequire } from 'node:module'
import path from 'node:path'

type Debug = ((...args: unknown[]) => void) & { enabled: boolean }

/** mqtt-packet's modules that create debug functions */
const DEBUGGING_MODULES = ['parser.js', 'writeToStream.js']

const require = createRequire(import.meta.url)
const mqttPacket = createRequire(require.resolve('aedes')).resolve('mqtt-packet')
const quieted: string[] = []

/** The namespaces mqtt-packet got a function that does nothing for. */
export function quietNamespaces (): readonly string[] { return quieted }

function loadMqttPacketQuietly (): void {
  const modules = DEBUGGING_MODULES.map(name => path.join(path.dirname(mqttPacket), name))
  if (modules.some(file => require.cache[file] !== undefined)) return
  const fromMqttPacket = createRequire(mqttPacket)
  const real = fromMqttPacket('debug') as (namespace: string) => Debug
  const entry = require.cache[fromMqttPacket.resolve('debug')]
  if (entry === undefined) return
  entry.exports = (namespace: string): Debug => {
    const debug = real(namespace)
    if (debug.enabled) return debug
    quieted.push(namespace)
    return Object.assign(() => {}, { namespace, enabled: false })
  }
  try {
    for (const file of modules) require(file)
  } finally {
    entry.exports = real
  }
}

loadMqttPacketQuietly()
