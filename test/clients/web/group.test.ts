// A group of three: two users in browser pages, the third on the real `threadline` binary.
import t from 'tap'
import { launchBrowser, openPage, waitOnline } from '../../helpers/browser.js'
import { cliEnv, runCli, startCli } from '../../helpers/cli.js'
import { startNode, token } from '../../helpers/node.js'

const browser = await launchBrowser(t)

const parsed = (line: string): Record<string, unknown> => JSON.parse(line) as Record<string, unknown>

t.test('two pages and the CLI in one group: each sees the others\' messages, ticks reach read once all three read', async (t) => {
  const node = await startNode(t)
  const url = `http://127.0.0.1:${node.httpPort}/`
  const alice = await openPage(t, browser, { url, token: token(node, 'alice') })
  const bob = await openPage(t, browser, { url, token: token(node, 'bob') })
  await Promise.all([waitOnline(alice.page), waitOnline(bob.page)])
  // Carol follows her inbox in a terminal, one JSON line per envelope
  const carol = cliEnv(node, token(node, 'carol'))
  const tail = startCli(t, ['tail'], { env: carol })
  await tail.line('stderr', /following/)

  // Alice starts the group from the page
  await alice.page.getByLabel('Start a conversation with').fill('bob, carol')
  await alice.page.getByRole('button', { name: 'Start', exact: true }).click()
  await alice.page.getByRole('heading', { name: 'alice, bob, carol' }).waitFor()
  const convId = await alice.page.locator('#conversations button[aria-current="true"]').getAttribute('data-conv')
  if (convId === null) throw new Error('the open conversation has no id')
  await tail.line('stdout', l => parsed(l).t === 'membership' && parsed(l).conv_id === convId)

  const aliceComposer = alice.page.getByRole('textbox', { name: 'Message' })
  await aliceComposer.fill('Hello, both of you')
  await aliceComposer.press('Enter')
  const hello = alice.page.locator('#messages li.msg.own', { hasText: 'Hello, both of you' })
  const event = parsed(await tail.line('stdout', l => parsed(l).t === 'event' && parsed(l).text === 'Hello, both of you'))
  t.match(event, { conv_id: convId, seq: 1, sender_id: 'alice', type: 'text' }, 'Carol\'s terminal printed Alice\'s message')
  // it reached Bob's page and Carol's terminal: ✓✓
  await hello.locator('.mark[data-status="delivered"]').waitFor()

  const bobsItem = bob.page.locator('#conversations button', { hasText: 'alice, bob, carol' })
  await bobsItem.click()
  await bob.page.locator('#messages li.msg.theirs', { hasText: 'Hello, both of you' }).waitFor()

  const sent = await runCli(['send', convId, 'Hi from the terminal'], { env: carol })
  t.equal(sent.code, 0, `threadline send exits 0 (stderr: ${sent.stderr})`)
  for (const page of [alice.page, bob.page]) {
    const fromCarol = page.locator('#messages li.msg.theirs', { hasText: 'Hi from the terminal' })
    await fromCarol.waitFor()
    t.equal(await fromCarol.locator('.who').textContent(), 'carol', 'a group message names its sender')
  }

  // Bob has read it (his page is open); only Carol's read makes it read by all
  t.equal(await hello.locator('.mark').getAttribute('data-status'), 'delivered', 'not read while Carol has not read it')
  const read = await runCli(['read', convId], { env: carol })
  t.equal(read.code, 0, `threadline read exits 0 (stderr: ${read.stderr})`)
  await hello.locator('.mark[data-status="read"]').waitFor()

  tail.child.kill('SIGINT')
  t.match(await tail.exited, { code: 0 }, 'tail ends cleanly on Ctrl-C')
  t.same([...alice.errors, ...bob.errors], [], 'no errors in the pages')
})
