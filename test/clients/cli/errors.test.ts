// What the CLI does when something is wrong: one line on stderr naming the problem, exit 2
// for the command line or configuration, 1 for what the server said or could not say;
// never a stack trace, never output a script could mistake for a result.
import t, { type Test } from 'tap'
import { createServer } from 'node:net'
import { startNode, token } from '../../helpers/node.js'
import { createTokenService } from '../../../core/tokens.js'
import { cliEnv, runCli, type CliRun } from '../../helpers/cli.js'

const CONV = '00000000-0000-4000-8000-000000000000'

/** One line, ours, no stack trace. */
function oneLine (t: Test, run: CliRun, message: RegExp, code: number): void {
  t.equal(run.code, code, `exit ${code} (${run.stderr.trim()})`)
  t.equal(run.stdout, '', 'nothing on stdout')
  t.match(run.stderr, /^threadline: [^\n]+\n$/, 'one line on stderr')
  t.match(run.stderr, message)
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace')
}

/** A port nothing listens on (it was free a moment ago). */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

t.test('--help lists the commands and exits 0', async (t) => {
  const run = await runCli(['--help'])
  t.equal(run.code, 0, run.stderr)
  for (const cmd of ['conversations', 'create', 'send', 'history', 'tail', 'chat', 'read']) t.match(run.stdout, new RegExp(`\\n  ${cmd}\\b`), cmd)
  t.match(run.stdout, /THREADLINE_URL/)
  t.match(run.stdout, /THREADLINE_TOKEN/)
  const sub = await runCli(['send', '--help'])
  t.equal(sub.code, 0)
  t.match(sub.stdout, /Usage: threadline send \[options\] <conv_id> <text>/)
  t.match(sub.stdout, /--reply-to <seq>/)
  t.match(sub.stdout, /--token <jwt>/, 'the global options too')
})

t.test('command-line mistakes exit 2 before anything reaches a server', async (t) => {
  const env = { THREADLINE_URL: `http://127.0.0.1:${await closedPort()}`, THREADLINE_TOKEN: 'a.eyJzdWIiOiJhbGljZSJ9.c' }
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['conversations'], { THREADLINE_URL: env.THREADLINE_URL }, /no token: pass --token <jwt> or set THREADLINE_TOKEN/],
    [['conversations', '--token', 'not-a-jwt'], { THREADLINE_URL: env.THREADLINE_URL }, /the token is not a JWT/],
    [['conversations', '--frobnicate'], env, /unknown option '--frobnicate'/],
    [['frobnicate'], env, /unknown command 'frobnicate'/],
    [['send', CONV], env, /missing required argument 'text'/],
    [['send', 'not-a-uuid', 'hi'], env, /a conversation id is a UUID/],
    [['history', CONV, '--limit', '500'], env, /expected a whole number from 1 to 200/],
    [['send', CONV, 'hi', '--reply-to', '0'], env, /expected a whole number from 1/],
    [['conversations', '--url', 'localhost:8080'], env, /--url must start with http:\/\/ or https:\/\//],
    [['conversations', '--device', 'a/b'], env, /--device must be 1–64 chars/],
    [['tail', '--transport', 'carrier-pigeon'], env, /--transport <kind>.*carrier-pigeon/]
  ]
  const runs = await Promise.all(cases.map(([args, e]) => runCli(args, { env: e })))
  for (const [i, [args, , message]] of cases.entries()) {
    t.test(args.join(' '), async (t) => oneLine(t, runs[i] as CliRun, message, 2))
  }
})

t.test('a server that is not there exits 1 saying so', async (t) => {
  const env = { THREADLINE_URL: `http://127.0.0.1:${await closedPort()}`, THREADLINE_TOKEN: 'a.eyJzdWIiOiJhbGljZSJ9.c' }
  const runs = await Promise.all([runCli(['conversations'], { env }), runCli(['send', CONV, 'hi'], { env })])
  for (const run of runs) oneLine(t, run, /cannot reach the server at http:\/\/127\.0\.0\.1:\d+\b.*is it running/, 1)
})

t.test('401, 403 and 404 from the server exit 1 with the reason', async (t) => {
  const node = await startNode(t)
  const forged = createTokenService('another-secret-0123456789abcdef-0123456789').sign({ sub: 'alice' }, 3600)
  const carol = cliEnv(node, token(node, 'carol'))
  const runs = await Promise.all([
    runCli(['conversations'], { env: cliEnv(node, forged) }),
    runCli(['send', CONV, 'hi'], { env: cliEnv(node, forged) }),
    runCli(['history', CONV], { env: carol }),
    runCli(['read', CONV], { env: carol }),
    runCli(['conversations', '--url', `http://127.0.0.1:${node.httpPort}/not/here`], { env: carol })
  ])
  const [restUnauthorized, mqttUnauthorized, forbidden, forbiddenRead, notFound] = runs as [CliRun, CliRun, CliRun, CliRun, CliRun]
  oneLine(t, restUnauthorized, /the server refused the token .*pass it with --token or THREADLINE_TOKEN/, 1)
  oneLine(t, mqttUnauthorized, /the server refused the token/, 1)
  oneLine(t, forbidden, /not allowed \(not_member: you are not a member of conversation/, 1)
  oneLine(t, forbiddenRead, /not allowed \(not_member: /, 1)
  oneLine(t, notFound, /not found \(not_found: no route GET \/not\/here\/v1\/conversations/, 1)
})
