// close() leaves nothing behind: no timer, no socket, no held poll. A process whose only
// work was a client exits by itself as soon as the client is closed.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createConversation, userId } from '../../helpers/fixtures.js'
import { startNode, token } from '../../helpers/node.js'
import { httpUrl } from '../../helpers/sdk.js'
import { withTimeout } from '../../helpers/wait.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

for (const transport of ['mqtt', 'longpoll'] as const) {
  t.test(`over ${transport}, a closed client keeps no process alive`, async (t) => {
    const node = await startNode(t)
    const [alice, bob] = [userId('alice'), userId('bob')]
    const conv = await createConversation(node, [alice, bob])
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/sdk/close-exits.ts'], {
      cwd: root,
      env: { ...process.env, THREADLINE_URL: httpUrl(node), THREADLINE_TOKEN: token(node, alice), CONV: conv, PEER: bob, TRANSPORT: transport },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    t.teardown(() => { child.kill('SIGKILL') })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
    const closedAt = new Promise<number>(resolve => child.stdout.on('data', () => { if (out.includes('closed')) resolve(performance.now()) }))
    const exited = new Promise<{ code: number | null, at: number }>(resolve => child.once('exit', code => resolve({ code, at: performance.now() })))

    const closed = await withTimeout(closedAt, 'the client to close', 30_000).catch((err: Error) => { throw new Error(`${err.message}\n${out}`) })
    const { code, at } = await withTimeout(exited, 'the process to exit after close()', 5_000)
    t.equal(code, 0, 'it exits cleanly')
    t.ok(at - closed < 1500, `within moments of close() (${Math.round(at - closed)} ms), not when some timer or poll runs out`)
  })
}
