// `npm run token -- <user> [--role R] [--ttl 1h]` (DESIGN.md §2): prints a token the
// broker accepts; bad input exits non-zero with a message that names the problem.
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNode, tempDir, TEST_SECRET } from '../helpers/node.js'
import { connectRaw, suback, tcpUrl } from '../helpers/access.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

interface Run { code: number | null, stdout: string, stderr: string }

function npmToken (args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const { THREADLINE_JWT_SECRET: _ignored, ...base } = process.env
    const child = spawn('npm', ['run', 'token', '--', ...args], { cwd: root, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** npm prints its own "> threadline@… token" banner first: the token is the last line. */
const printedToken = (run: Run): string => run.stdout.trim().split('\n').at(-1) ?? ''
const claims = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>

t.test('npm run token -- alice prints a token the broker accepts', async (t) => {
  const node = await startNode(t)
  const run = await npmToken(['alice'], { THREADLINE_JWT_SECRET: TEST_SECRET, THREADLINE_DATA_DIR: await tempDir(t) })
  t.equal(run.code, 0, run.stderr)
  const jwt = printedToken(run)
  t.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/)
  const c = claims(jwt)
  t.match(c, { sub: 'alice', role: 'user' })
  const ttl = (c.exp as number) - Math.floor(Date.now() / 1000)
  t.ok(ttl > 3500 && ttl <= 3600, `default ttl is 1h (${ttl}s left)`)
  const client = await connectRaw(t, tcpUrl(node), { clientId: 'alice:cli', username: 'alice', password: jwt })
  t.same(await suback(client, 'user/alice/inbox'), [1])
})

t.test('--role and --ttl end up in the token', async (t) => {
  const run = await npmToken(['ingest', '--role', 'integrator', '--ttl', '15m'], { THREADLINE_JWT_SECRET: TEST_SECRET, THREADLINE_DATA_DIR: await tempDir(t) })
  t.equal(run.code, 0, run.stderr)
  const c = claims(printedToken(run))
  t.match(c, { sub: 'ingest', role: 'integrator' })
  const ttl = (c.exp as number) - Math.floor(Date.now() / 1000)
  t.ok(ttl > 800 && ttl <= 900, `15m (${ttl}s left)`)
})

t.test('without a configured secret the token is signed with one generated into the data dir', async (t) => {
  const dataDir = await tempDir(t)
  const run = await npmToken(['alice'], { THREADLINE_DATA_DIR: dataDir })
  t.equal(run.code, 0, run.stderr)
  t.match(run.stderr, /THREADLINE_JWT_SECRET is not set/, 'with a warning')
  t.ok((await readFile(path.join(dataDir, 'jwt-secret'), 'utf8')).trim().length >= 32, 'a secret of at least 32 bytes')
  // a node on the same data dir, no secret configured either, accepts it
  const node = await startNode(t, { env: { THREADLINE_JWT_SECRET: '', THREADLINE_DATA_DIR: dataDir } })
  const client = await connectRaw(t, tcpUrl(node), { clientId: 'alice:cli', username: 'alice', password: printedToken(run) })
  t.ok(client.connected)
})

t.test('bad input exits non-zero with a clear message and prints no token', async (t) => {
  const env = { THREADLINE_JWT_SECRET: TEST_SECRET, THREADLINE_DATA_DIR: await tempDir(t) }
  const cases: Array<[string[], RegExp]> = [
    [['alice', '--role', 'god'], /role must be one of user, integrator, admin/],
    // the server refuses a token whose name it can't store as a display name
    [['alice', '--name', 'x'.repeat(129)], /name must be a string of at most 128 chars/],
    [['alice', '--ttl', 'x'], /--ttl must look like 90s, 15m, 1h or 7d/],
    [['bad/id'], /user id must be 1–64 chars/],
    [[], /give exactly one user id/]
  ]
  // each run is a cold tsx start (~2–3 s): run them side by side
  const runs = await Promise.all(cases.map(([args]) => npmToken(args, env)))
  for (const [i, [args, message]] of cases.entries()) {
    const run = runs[i] as Run
    t.not(run.code, 0, `${args.join(' ')}: exit ${run.code}`)
    t.match(run.stderr, message, `${args.join(' ')}: says why`)
    t.notMatch(run.stdout, /^[\w-]+\.[\w-]+\.[\w-]+$/m, `${args.join(' ')}: no token on stdout`)
  }
})

t.test('the longest --name the CLI signs is one the server accepts', async (t) => {
  const node = await startNode(t)
  const name = 'n'.repeat(128)
  const run = await npmToken(['alice', '--name', name], { THREADLINE_JWT_SECRET: TEST_SECRET, THREADLINE_DATA_DIR: await tempDir(t) })
  t.equal(run.code, 0, run.stderr)
  await connectRaw(t, tcpUrl(node), { clientId: 'alice:cli', username: 'alice', password: printedToken(run) })
  const rows = await node.store.query<{ display_name: string }>('SELECT display_name FROM users WHERE id = $1', ['alice'])
  t.same(rows, [{ display_name: name }])
})

t.test('with THREADLINE_JWT_ISSUER/AUDIENCE the token carries them and a node configured alike accepts it', async (t) => {
  const env = { THREADLINE_JWT_ISSUER: 'https://id.example.test', THREADLINE_JWT_AUDIENCE: 'threadline-chat' }
  const node = await startNode(t, { env })
  const run = await npmToken(['alice'], { ...env, THREADLINE_JWT_SECRET: TEST_SECRET, THREADLINE_DATA_DIR: await tempDir(t) })
  t.equal(run.code, 0, run.stderr)
  t.match(claims(printedToken(run)), { iss: env.THREADLINE_JWT_ISSUER, aud: env.THREADLINE_JWT_AUDIENCE })
  const client = await connectRaw(t, tcpUrl(node), { clientId: 'alice:cli', username: 'alice', password: printedToken(run) })
  t.ok(client.connected)
})
