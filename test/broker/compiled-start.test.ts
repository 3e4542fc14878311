// `npm start` serves compiled JavaScript: it builds dist/ with tsc when a source is newer
// than the last build and execs plain node on it. The tests run in a copy of the server's
// sources without dist/ (a fresh clone), so they never race with a developer's own dist/,
// and its node_modules lacks tsx, so a server that still needed a TypeScript loader at
// runtime would fail to start.
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { appendFile, cp, mkdir, readdir, readFile, stat, symlink } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import mqtt from 'mqtt'
import { createTokenService } from '../../core/tokens.js'
import { TEST_SECRET, tempDir } from '../helpers/node.js'
import { spawnServer } from '../helpers/spawn-node.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const SERVER_DIRS = ['broker', 'core', 'plugins', 'schemas', 'sync-api']
// the npm that runs this test, else the one installed with node
const npmCli = process.env.npm_execpath ?? path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')

async function freshClone (): Promise<string> {
  const dir = await tempDir(t)
  for (const file of ['package.json', 'tsconfig.json', 'tsconfig.build.json']) await cp(path.join(root, file), path.join(dir, file))
  for (const sub of [...SERVER_DIRS, 'clients']) await cp(path.join(root, sub), path.join(dir, sub), { recursive: true })
  await mkdir(path.join(dir, 'node_modules'))
  for (const entry of await readdir(path.join(root, 'node_modules'))) {
    if (entry !== 'tsx') await symlink(path.join(root, 'node_modules', entry), path.join(dir, 'node_modules', entry))
  }
  return dir
}

/** `npm run <script>` in `dir`, with none of the running `npm test`'s own npm_* settings. */
async function npmRun (dir: string, script: string): Promise<void> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')))
  await promisify(execFile)(process.execPath, [npmCli, 'run', '-s', script], { cwd: dir, env })
}

const clone = await freshClone()
const mainJs = path.join(clone, 'dist', 'broker', 'main.js')

t.test('npm start on a fresh clone builds dist/, serves from it under plain node and exits 0 on SIGTERM', async (t) => {
  const server = await spawnServer(t, {
    command: { file: process.execPath, args: [npmCli, 'start'], cwd: clone },
    env: { THREADLINE_DATA_DIR: await tempDir(t), THREADLINE_JWT_SECRET: TEST_SECRET },
    // a full tsc build comes first
    startTimeoutMs: 150_000
  })
  t.ok((await stat(mainJs)).isFile(), 'dist/broker/main.js was built')

  const health = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`)
  t.equal(health.status, 200, '/healthz answers')
  // the web page is bundled as the node starts; its first request waits for that build
  const page = await fetch(`http://127.0.0.1:${server.httpPort}/`)
  t.equal(page.status, 200, 'the web page is served with no build step run by hand')
  t.match(page.headers.get('content-type'), /^text\/html/)
  const script = await fetch(`http://127.0.0.1:${server.httpPort}/app.js`)
  t.equal(script.status, 200, 'with its bundled script')
  t.match(script.headers.get('content-type'), /javascript/)
  t.same((await readdir(path.join(clone, 'dist'))).filter(e => !e.endsWith('.tsbuildinfo')).sort(), [...SERVER_DIRS, 'web'].sort(),
    'dist/ holds the server and the web bundle only, no tests or benchmarks')
  const openapi = await fetch(`http://127.0.0.1:${server.httpPort}/docs/json`)
  t.equal(openapi.status, 200, 'the OpenAPI document is served')
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, {
    clientId: 'alice:phone', username: 'alice', password: createTokenService(TEST_SECRET).sign({ sub: 'alice' }, 600), reconnectPeriod: 0
  })
  t.ok(client.connected, 'an MQTT client connects')
  await client.endAsync()

  // to npm, as Docker or Kubernetes would send it to PID 1: it reaches the server
  const exit = await server.stop('SIGTERM')
  t.equal(exit.code, 0, 'exit code 0')
  t.ok(server.output.some(line => line.includes('"msg":"threadline stopped"')), 'the server drained before it exited')
})

t.test('npm run build compiles what changed since the last build, and nothing when nothing did', async (t) => {
  await npmRun(clone, 'build')
  const untouched = path.join(clone, 'dist', 'core', 'iso.js')
  const [mainBefore, untouchedBefore] = await Promise.all([stat(mainJs), stat(untouched)])

  let started = Date.now()
  await npmRun(clone, 'build')
  t.comment(`an up-to-date build took ${Date.now() - started} ms`)
  t.equal((await stat(mainJs)).mtimeMs, mainBefore.mtimeMs, 'an up-to-date tree is not compiled again')

  const probe = `// build probe ${randomUUID()}`
  await appendFile(path.join(clone, 'broker', 'main.ts'), `${probe}\n`)
  started = Date.now()
  await npmRun(clone, 'build')
  t.comment(`a build after one changed file took ${Date.now() - started} ms`)
  t.match(await readFile(mainJs, 'utf8'), probe, 'the changed source is compiled again')
  t.equal((await stat(untouched)).mtimeMs, untouchedBefore.mtimeMs, 'an unchanged one is not')
})
