// `threadline conversations | create | send | history | read`, the real binary against a
// real node: what each prints, and that what it did is in the store (checked over REST).
import t from 'tap'
import { http, longPollStats } from '../../helpers/longpoll.js'
import { startNode, token } from '../../helpers/node.js'
import { cliEnv, runCli } from '../../helpers/cli.js'
import type { ConversationView, HistoryPage } from '../../../schemas/index.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

t.test('create prints the new conversation\'s id; conversations lists it with the unread count', async (t) => {
  const node = await startNode(t)
  const alice = cliEnv(node, token(node, 'alice'))
  const bob = cliEnv(node, token(node, 'bob'))

  const direct = await runCli(['create', 'bob'], { env: alice })
  t.equal(direct.code, 0, direct.stderr)
  const directId = direct.stdout.trim()
  t.match(directId, UUID, 'the id alone, for CONV=$(threadline create bob)')
  const again = await runCli(['create', 'alice'], { env: bob })
  t.equal(again.stdout.trim(), directId, 'a direct conversation is the same one again, whoever asks')

  const group = await runCli(['create', 'bob', 'carol', '--title', 'Weekend', '--json'], { env: alice })
  t.equal(group.code, 0, group.stderr)
  const created = JSON.parse(group.stdout) as { id: string, type: string, title: string, members: Array<{ user_id: string }> }
  t.match(created, { type: 'group', title: 'Weekend' })
  t.same(created.members.map(m => m.user_id).sort(), ['alice', 'bob', 'carol'])

  const sent = await http(node, token(node, 'alice'), 'POST', `/v1/conversations/${directId}/messages`, { client_msg_id: 'c1', type: 'text', text: 'Lunch?' })
  t.equal(sent.status, 201)

  const json = await runCli(['conversations', '--json'], { env: bob })
  t.equal(json.code, 0, json.stderr)
  const list = json.stdout.trim().split('\n').map(l => JSON.parse(l) as ConversationView)
  t.same(list.map(c => c.id), [directId, created.id], 'one JSON object per line, newest activity first')
  t.equal(list[0]?.unread_count, 1)

  const text = await runCli(['conversations'], { env: bob })
  t.equal(text.code, 0, text.stderr)
  const lines = text.stdout.trim().split('\n')
  t.match(lines[0], new RegExp(`^${directId}\\s+direct\\s+alice\\s+1 unread\\s+alice: Lunch\\?$`))
  t.match(lines[1], new RegExp(`^${created.id}\\s+group\\s+Weekend$`))
})

t.test('create refuses a direct conversation with a title, or a group without one, before asking the server', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  const env = cliEnv(node, token(node, 'alice'))
  const runs = await Promise.all([
    runCli(['create', 'bob', 'carol'], { env }),
    runCli(['create', 'bob', '--type', 'direct', '--title', 'x'], { env }),
    runCli(['create', 'bad/id'], { env })
  ])
  t.same(runs.map(r => r.code), [2, 2, 2])
  t.match(runs[0]?.stderr, /^threadline: a group needs a title: --title/)
  t.match(runs[1]?.stderr, /^threadline: a direct conversation has no title/)
  t.match(runs[2]?.stderr, /^threadline: .*"bad\/id" is not a user id/)
  const list = await http<{ conversations: unknown[] }>(node, token(node, 'alice'), 'GET', '/v1/conversations')
  t.same(list.body.conversations, [], 'nothing was created')
})

t.test('send waits for the server, prints the seq, and the message is stored once', async (t) => {
  const node = await startNode(t)
  const aliceToken = token(node, 'alice')
  const env = cliEnv(node, aliceToken)
  const conv = (await http<{ id: string }>(node, aliceToken, 'POST', '/v1/conversations', { type: 'direct', members: ['bob'] })).body.id

  const first = await runCli(['send', conv, 'Hi Bob!'], { env })
  t.equal(first.code, 0, first.stderr)
  t.equal(first.stdout, '1\n', 'the seq alone')
  const reply = await runCli(['send', conv, 'another', '--reply-to', '1', '--json'], { env })
  t.equal(reply.code, 0, reply.stderr)
  const result = JSON.parse(reply.stdout) as { conv_id: string, seq: number, ts: string, client_msg_id: string }
  t.match(result, { conv_id: conv, seq: 2, ts: String, client_msg_id: String })
  const piped = await runCli(['send', conv, '-'], { env, stdin: 'from\nstdin\n' })
  t.equal(piped.stdout, '3\n', piped.stderr)

  const page = await http<HistoryPage>(node, aliceToken, 'GET', `/v1/conversations/${conv}/events?after_seq=0`)
  t.same(page.body.events.map(e => [e.seq, e.sender_id, e.text, e.reply_to]), [
    [1, 'alice', 'Hi Bob!', undefined],
    [2, 'alice', 'another', 1],
    [3, 'alice', 'from\nstdin', undefined]
  ], 'each stored once, as sent')
  t.equal(page.body.events[1]?.client_msg_id, result.client_msg_id)
})

t.test('a send the server refuses exits 1 with its error code', async (t) => {
  const node = await startNode(t)
  const aliceToken = token(node, 'alice')
  const conv = (await http<{ id: string }>(node, aliceToken, 'POST', '/v1/conversations', { type: 'direct', members: ['bob'] })).body.id
  const [outsider, badReply] = await Promise.all([
    runCli(['send', conv, 'let me in'], { env: cliEnv(node, token(node, 'carol')) }),
    runCli(['send', conv, 'reply to nothing', '--reply-to', '99'], { env: cliEnv(node, aliceToken) })
  ])
  t.equal(outsider.code, 1)
  t.equal(outsider.stdout, '')
  t.match(outsider.stderr, /^threadline: the server refused the message \(not_member: .+\)\n$/)
  t.equal(badReply.code, 1)
  t.match(badReply.stderr, /^threadline: the server refused the message \(not_found: .+\)\n$/)
  const page = await http<HistoryPage>(node, aliceToken, 'GET', `/v1/conversations/${conv}/events`)
  t.same(page.body.events, [], 'nothing stored')
})

t.test('history prints folded messages oldest first and pages back with --before', async (t) => {
  const node = await startNode(t)
  const aliceToken = token(node, 'alice')
  const bobToken = token(node, 'bob')
  const conv = (await http<{ id: string }>(node, aliceToken, 'POST', '/v1/conversations', { type: 'direct', members: ['bob'] })).body.id
  const post = (who: string, body: Record<string, unknown>) => http(node, who, 'POST', `/v1/conversations/${conv}/messages`, body)
  for (const [i, text] of ['one', 'two', 'three', 'four'].entries()) await post(i % 2 === 0 ? aliceToken : bobToken, { client_msg_id: `m${i}`, type: 'text', text })
  await post(aliceToken, { client_msg_id: 'e1', type: 'edit', target_seq: 3, text: 'three!' }) // seq 5
  await post(bobToken, { client_msg_id: 'r1', type: 'reaction', target_seq: 3, emoji: '👍' }) // seq 6
  await post(bobToken, { client_msg_id: 'd1', type: 'delete', target_seq: 4 }) // seq 7
  await post(aliceToken, { client_msg_id: 'm5', type: 'text', text: 'evil \u001b[2J\nsecond line' }) // seq 8

  const env = cliEnv(node, bobToken)
  const newest = await runCli(['history', conv, '--limit', '6'], { env })
  t.equal(newest.code, 0, newest.stderr)
  t.match(newest.stdout, /^#3 \d\d:\d\d alice: three! \(edited\) {2}\[👍 bob\]\n#4 \d\d:\d\d bob: \(deleted\)\n#8 \d\d:\d\d alice: evil \ufffd\[2J\n {4}second line\n$/,
    'edits, reactions and deletes folded in; a terminal escape shown as \ufffd, a second line indented')
  t.equal(newest.stderr, `older: threadline history ${conv} --before 3\n`, 'how to page back, on stderr')

  const older = await runCli(['history', conv, '--before', '3', '--json'], { env })
  t.equal(older.code, 0, older.stderr)
  const messages = older.stdout.trim().split('\n').map(l => JSON.parse(l) as { seq: number, text: string, sender_id: string })
  t.same(messages.map(m => [m.seq, m.sender_id, m.text]), [[1, 'alice', 'one'], [2, 'bob', 'two']])
  t.equal(older.stderr, '', 'nothing older')
})

t.test('read marks the conversation read up to its last seq, and waits until the server has it', async (t) => {
  const node = await startNode(t)
  const aliceToken = token(node, 'alice')
  const bobToken = token(node, 'bob')
  const conv = (await http<{ id: string }>(node, aliceToken, 'POST', '/v1/conversations', { type: 'direct', members: ['bob'] })).body.id
  for (const id of ['a', 'b']) await http(node, aliceToken, 'POST', `/v1/conversations/${conv}/messages`, { client_msg_id: id, type: 'text', text: id })

  const before = await http<ConversationView>(node, bobToken, 'GET', `/v1/conversations/${conv}`)
  t.equal(before.body.unread_count, 2)
  const run = await runCli(['read', conv], { env: cliEnv(node, bobToken) })
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, 'read up to #2\n')
  const after = await http<ConversationView>(node, bobToken, 'GET', `/v1/conversations/${conv}`)
  t.same(after.body.markers, { delivered_seq: 2, read_seq: 2 })
  t.equal(after.body.unread_count, 0)

  const again = await runCli(['read', conv, '--json'], { env: cliEnv(node, bobToken) })
  t.equal(again.code, 0, again.stderr)
  t.same(JSON.parse(again.stdout), { conv_id: conv, read_seq: 2, delivered_seq: 2 }, 'already read: nothing to wait for')
})

t.test('a one-shot run with a made-up device leaves no session behind; a named device uses MQTT', async (t) => {
  const node = await startNode(t)
  const aliceToken = token(node, 'alice')
  const conv = (await http<{ id: string }>(node, aliceToken, 'POST', '/v1/conversations', { type: 'direct', members: ['bob'] })).body.id
  const mqttClients: string[] = []
  node.broker.on('client', c => { mqttClients.push(c.id) })

  const throwaway = await runCli(['send', conv, 'one'], { env: cliEnv(node, aliceToken) })
  t.equal(throwaway.stdout, '1\n', throwaway.stderr)
  t.same(mqttClients, [], 'no MQTT session: it would outlive the run by days (the long-poll queue is deleted at the end)')
  t.same(await longPollStats(node), { queues: 0, events: 0, held: 0, devices: 0 }, 'the long-poll queue is gone')

  const named = await runCli(['send', conv, 'two', '--device', 'laptop'], { env: cliEnv(node, aliceToken) })
  t.equal(named.stdout, '2\n', named.stderr)
  t.same(mqttClients, ['alice:laptop'], 'a named device keeps its MQTT session for the next run')
})
