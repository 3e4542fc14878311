// The web page at `/` in real headless Chromium against a real node: two pages are two
// users, each in a browser context of its own.
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { launchBrowser, openPage, pngSize, VIEWPORT, waitOnline } from '../../helpers/browser.js'
import { startHttpProxy } from '../../helpers/http-proxy.js'
import { startNode, token } from '../../helpers/node.js'

const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'artifacts')

const browser = await launchBrowser(t)

t.test('two users chat in two pages: unread counts, ticks up to read, a typing indicator that expires, a screenshot', async (t) => {
  const node = await startNode(t)
  const url = `http://127.0.0.1:${node.httpPort}/`
  // Alice's network can be taken away later
  const alicesNetwork = await startHttpProxy(t, { host: '127.0.0.1', port: node.httpPort })
  const alice = await openPage(t, browser, { url: `${alicesNetwork.url}/`, token: token(node, 'alice') })
  const bob = await openPage(t, browser, { url, token: token(node, 'bob') })
  await Promise.all([waitOnline(alice.page, 'mqtt'), waitOnline(bob.page, 'mqtt')])
  t.equal(await alice.page.locator('#me').textContent(), 'Signed in as alice')
  t.equal(new URL(alice.page.url()).hash, '', 'the token is taken out of the address bar')

  // Alice starts the conversation from the page and sends with Enter
  await alice.page.getByLabel('Start a conversation with').fill('bob')
  await alice.page.getByRole('button', { name: 'Start', exact: true }).click()
  await alice.page.getByRole('heading', { name: 'bob' }).waitFor()
  const aliceComposer = alice.page.getByRole('textbox', { name: 'Message' })
  t.equal(await alice.page.locator('#message:focus').count(), 1, 'the composer has the focus once the conversation is open')
  await aliceComposer.fill('Hi Bob!')
  await aliceComposer.press('Enter')
  const hiBob = alice.page.locator('#messages li.msg.own', { hasText: 'Hi Bob!' })
  await hiBob.waitFor()
  t.equal(await aliceComposer.inputValue(), '', 'Enter sent it and emptied the composer')

  // Bob's list gets the new conversation with one unread message; his device got it: ✓✓
  const bobsItem = bob.page.locator('#conversations button', { hasText: 'alice' })
  await bobsItem.locator('.unread', { hasText: '1' }).waitFor()
  t.match(await bobsItem.innerText(), /Hi Bob!/, 'with the last message as preview')
  await hiBob.locator('.mark[data-status="delivered"]').waitFor()

  // Bob opens it: he reads it, Alice sees it read
  await bobsItem.click()
  await bob.page.locator('#messages li.msg.theirs', { hasText: 'Hi Bob!' }).waitFor()
  await hiBob.locator('.mark[data-status="read"]').waitFor()
  await bobsItem.locator('.unread').waitFor({ state: 'detached' })

  // Bob answers; Alice has the conversation open, so his message is read at once
  const bobComposer = bob.page.getByRole('textbox', { name: 'Message' })
  await bobComposer.fill('Hi Alice! Lunch?')
  await bobComposer.press('Enter')
  await alice.page.locator('#messages li.msg.theirs', { hasText: 'Hi Alice! Lunch?' }).waitFor()
  await bob.page.locator('#messages li.msg.own', { hasText: 'Hi Alice! Lunch?' }).locator('.mark[data-status="read"]').waitFor()
  const aliceItem = alice.page.locator('#conversations button', { hasText: 'bob' })
  await aliceItem.locator('.presence[data-state="online"]').waitFor()

  // Alice starts typing: Bob sees it
  await aliceComposer.pressSequentially('Sure, at no')
  await bob.page.locator('#typing', { hasText: 'alice is typing…' }).waitFor()

  const png = await bob.page.screenshot()
  await mkdir(ARTIFACTS, { recursive: true })
  await writeFile(path.join(ARTIFACTS, 'web-chat.png'), png)
  t.same(pngSize(png), VIEWPORT, `test/artifacts/web-chat.png: the page at ${VIEWPORT.width}×${VIEWPORT.height}`)
  t.same(await bob.page.locator('#messages li.msg .text').allInnerTexts(), ['Hi Bob!', 'Hi Alice! Lunch?'], 'what the screenshot shows: both messages, in order')
  const marks = await bob.page.locator('#messages li.msg.own .mark').all()
  t.same(await Promise.all(marks.map(m => m.getAttribute('data-status'))), ['read'], 'Bob\'s own message: read')
  t.equal(await bob.page.locator('#conversation-title').textContent(), 'alice')

  // Alice loses her network mid-sentence, so no "stopped typing" can come: it expires
  const shown = Date.now()
  alicesNetwork.cut()
  await bob.page.locator('#typing', { hasText: 'typing' }).waitFor({ state: 'detached' })
  const expiredMs = Date.now() - shown
  t.ok(expiredMs >= 3000 && expiredMs < 9000, `the indicator went after ${expiredMs} ms (it expires 5 s after the last "typing")`)
  await alice.page.locator('#connection:not([data-state="online"])').waitFor()

  t.same(bob.errors, [], 'no errors in Bob\'s page')
  // the browser reports the failed reconnects itself; anything else would be the page's fault
  t.same(alice.errors.filter(e => !/WebSocket|ERR_CONNECTION|ERR_EMPTY_RESPONSE|Failed to load resource/i.test(e)), [], 'no other errors in Alice\'s page')
})
