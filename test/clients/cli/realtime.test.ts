// `threadline tail` and `threadline chat`, the real binary on a real node: what arrives in
// real time is printed as it comes, and chat sends what is typed on its stdin.
import t from 'tap'
import { http } from '../../helpers/longpoll.js'
import { startNode, token } from '../../helpers/node.js'
import { waitFor } from '../../helpers/wait.js'
import { cliEnv, runCli, startCli } from '../../helpers/cli.js'
import type { ConversationView, HistoryPage } from '../../../schemas/index.js'

async function direct (node: { httpPort: number }, from: string, to: string): Promise<string> {
  return (await http<{ id: string }>(node, from, 'POST', '/v1/conversations', { type: 'direct', members: [to] })).body.id
}

for (const transport of ['auto', 'longpoll'] as const) {
  t.test(`tail (--transport ${transport}) prints one JSON line per envelope as other users act, until interrupted`, async (t) => {
    const node = await startNode(t)
    const aliceToken = token(node, 'alice')
    const conv = await direct(node, aliceToken, 'bob')
    const tail = startCli(t, ['tail', '--transport', transport], { env: cliEnv(node, token(node, 'bob')) })
    await tail.line('stderr', /following/)

    const sent = await runCli(['send', conv, 'one'], { env: cliEnv(node, aliceToken) })
    t.equal(sent.code, 0, sent.stderr)
    await http(node, aliceToken, 'POST', `/v1/conversations/${conv}/messages`, { client_msg_id: 'two', type: 'text', text: 'two' })
    const group = (await http<{ id: string }>(node, aliceToken, 'POST', '/v1/conversations', { type: 'group', title: 'G', members: ['bob'] })).body.id

    await tail.line('stdout', l => l.includes('"membership"'))
    const printed = tail.stdout.map(l => JSON.parse(l) as Record<string, unknown>)
    t.match(printed.filter(e => e.t === 'event'), [
      { t: 'event', conv_id: conv, seq: 1, sender_id: 'alice', type: 'text', text: 'one' },
      { t: 'event', conv_id: conv, seq: 2, sender_id: 'alice', type: 'text', text: 'two', client_msg_id: 'two' }
    ], 'the envelopes as sent, in seq order')
    t.equal(printed.filter(e => e.t === 'event').length, 2, 'each once')
    t.match(printed.find(e => e.t === 'membership'), { t: 'membership', conv_id: group, change: 'added' })

    tail.child.kill('SIGINT')
    t.same(await tail.exited, { code: 0, signal: null }, 'Ctrl-C ends it cleanly')
  })
}

t.test('chat shows the conversation, sends each stdin line, shows what arrives, marks it read', async (t) => {
  const node = await startNode(t)
  const aliceToken = token(node, 'alice')
  const bobToken = token(node, 'bob')
  const conv = await direct(node, aliceToken, 'bob')
  const post = (body: Record<string, unknown>) => http(node, aliceToken, 'POST', `/v1/conversations/${conv}/messages`, body)
  await post({ client_msg_id: 'a1', type: 'text', text: 'hello bob' })

  const chat = startCli(t, ['chat', conv], { env: cliEnv(node, bobToken) })
  await chat.line('stdout', /^#1 \d\d:\d\d alice: hello bob$/)
  t.match(chat.stderr[0], /^alice \(direct\) · type a message/, 'a header naming the conversation')
  await waitFor(async () => (await http<ConversationView>(node, bobToken, 'GET', `/v1/conversations/${conv}`)).body.markers.read_seq === 1,
    'bob\'s read marker at 1: what chat shows is read')

  await http(node, aliceToken, 'POST', `/v1/conversations/${conv}/typing`, { typing: true })
  await chat.line('stdout', /^· alice is typing…$/)
  await post({ client_msg_id: 'a2', type: 'text', text: 'how are you?' })
  await chat.line('stdout', /^#2 \d\d:\d\d alice: how are you\?$/)

  chat.child.stdin.write('fine, thanks\n')
  await chat.line('stdout', /^#3 \d\d:\d\d bob: fine, thanks$/)
  const page = await http<HistoryPage>(node, aliceToken, 'GET', `/v1/conversations/${conv}/events?after_seq=2`)
  t.match(page.body.events, [{ seq: 3, sender_id: 'bob', type: 'text', text: 'fine, thanks' }], 'stored')

  await http(node, aliceToken, 'POST', `/v1/conversations/${conv}/receipts`, { status: 'read', seq: 3 })
  await chat.line('stdout', /^· alice read up to #3$/)

  await post({ client_msg_id: 'a3', type: 'edit', target_seq: 2, text: 'how are you doing?' })
  await chat.line('stdout', /^~ #2 \d\d:\d\d alice: how are you doing\? \(edited\)$/)

  chat.child.stdin.end('bye\n')
  t.same(await chat.exited, { code: 0, signal: null }, 'the end of input ends it, once the last line is stored')
  const last = await http<HistoryPage>(node, aliceToken, 'GET', `/v1/conversations/${conv}/events?after_seq=4`)
  t.match(last.body.events, [{ seq: 5, sender_id: 'bob', text: 'bye' }])
})
