// The SDK ships to browsers: esbuild bundles it for the browser platform with no Node
// built-in (an import of node:… or a Node-only module fails the build here), and the bundle
// carries none of the server's code or TypeBox (the wire types are imported as types).
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import t from 'tap'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

t.test('clients/sdk bundles for the browser', async (t) => {
  const result = await build({
    entryPoints: [path.join(root, 'clients/sdk/index.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent'
  })
  t.same(result.errors, [], 'no build errors')
  const inputs = Object.keys(result.metafile.inputs)
  const ours = inputs.filter(f => !f.includes('node_modules'))
  t.ok(ours.every(f => f.startsWith('clients/sdk/')), `only SDK sources of ours: ${ours.filter(f => !f.startsWith('clients/sdk/')).join(', ') || 'yes'}`)
  t.notOk(inputs.some(f => f.includes('node_modules/typebox')), 'no TypeBox')
  t.ok(inputs.some(f => f.includes('node_modules/mqtt/dist/mqtt.esm.js')), "mqtt's browser build")
  const js = result.outputFiles[0]!.text
  t.notMatch(js, /from\s*["']node:/, 'no node: imports')
  t.ok(js.length < 600_000, `a reasonable size (${Math.round(js.length / 1024)} KiB unminified)`)
})
