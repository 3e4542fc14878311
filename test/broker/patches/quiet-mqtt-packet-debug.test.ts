// broker/patches/quiet-mqtt-packet-debug.ts: mqtt-packet, as Aedes imports it, gets a
// function that does nothing for each debug namespace that is off, and the real one for a
// namespace DEBUG turns on. In a fresh node per case (the patch acts once, before Aedes is
// loaded), through broker/server.ts as the node starts it, with a real Aedes and client.
import { execFile } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import path from 'node:path'
import t from 'tap'

const root = path.resolve(import.meta.dirname, '../../..')
const url = (file: string): string => pathToFileURL(path.join(root, file)).href

// Imports the server module first, as broker/main.ts does (AEDES_FIRST: Aedes before it),
// then serves one client. LATER: namespaces the debug package turns on once all is loaded.
const CHILD = `
import net from 'node:net'
import { once } from 'node:events'
import { createRequire } from 'node:module'
if (process.env.AEDES_FIRST !== undefined) await import('aedes')
await import('${url('broker/server.ts')}')
const { quietNamespaces } = await import('${url('broker/patches/quiet-mqtt-packet-debug.ts')}')
const { Aedes } = await import('aedes')
const { default: mqtt } = await import('mqtt')
if (process.env.LATER !== undefined) {
  const fromAedes = createRequire(createRequire('${url('package.json')}').resolve('aedes'))
  createRequire(fromAedes.resolve('mqtt-packet'))('debug').enable(process.env.LATER)
}
const broker = await Aedes.createBroker()
const server = net.createServer(broker.handle)
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const client = mqtt.connect('mqtt://127.0.0.1:' + server.address().port, { reconnectPeriod: 0 })
await once(client, 'connect')
await client.endAsync()
await new Promise(resolve => broker.close(resolve))
server.close()
process.stdout.write(JSON.stringify(quietNamespaces()))
`

async function run (env: Record<string, string>): Promise<{ quiet: string[], stderr: string }> {
  const childEnv = { ...process.env, ...env }
  if (env.DEBUG === undefined) delete childEnv.DEBUG
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: root, env: childEnv, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`${err.message}\n${stderr}`))
      resolve({ quiet: JSON.parse(stdout) as string[], stderr })
    })
  })
}

t.test('every namespace off at start: Aedes\' mqtt-packet parses and writes through functions that do nothing', async (t) => {
  const { quiet, stderr } = await run({ LATER: 'mqtt-packet:*' })
  t.same([...quiet].sort(), ['mqtt-packet:parser', 'mqtt-packet:writeToStream'])
  t.notMatch(stderr, /mqtt-packet/, 'turning them on later reaches nothing')
})

t.test('the witness: without the patch (Aedes loaded first), the same late switch shows the packets', async (t) => {
  const { quiet, stderr } = await run({ LATER: 'mqtt-packet:*', AEDES_FIRST: '1' })
  t.same(quiet, [], 'too late: the patch changed nothing')
  t.match(stderr, /mqtt-packet:parser .*_parseConnect/)
  t.match(stderr, /mqtt-packet:writeToStream/)
})

t.test('a namespace DEBUG turns on at start keeps the real debug', async (t) => {
  const { quiet, stderr } = await run({ DEBUG: 'mqtt-packet:parser' })
  t.same(quiet, ['mqtt-packet:writeToStream'])
  t.match(stderr, /mqtt-packet:parser .*_parseConnect/, 'the CONNECT Aedes parsed, in the parser\'s debug output')
  t.notMatch(stderr, /mqtt-packet:writeToStream/)
})
