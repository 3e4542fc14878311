// The web page when the network in front of it refuses WebSockets: it keeps working over
// long-poll, and the other side can't tell.
import t from 'tap'
import { launchBrowser, openPage, waitOnline } from '../../helpers/browser.js'
import { startHttpProxy } from '../../helpers/http-proxy.js'
import { startNode, token } from '../../helpers/node.js'

const browser = await launchBrowser(t)

t.test('with WebSocket upgrades refused on the way, the page chats over long-poll: messages, ticks, typing', async (t) => {
  const node = await startNode(t)
  const proxy = await startHttpProxy(t, { host: '127.0.0.1', port: node.httpPort })
  proxy.blockWebSockets()
  const direct = `http://127.0.0.1:${node.httpPort}/`
  const alice = await openPage(t, browser, { url: `${proxy.url}/`, token: token(node, 'alice') })
  const bob = await openPage(t, browser, { url: direct, token: token(node, 'bob') })
  await Promise.all([waitOnline(alice.page, 'longpoll'), waitOnline(bob.page, 'mqtt')])
  t.ok(proxy.refused > 0, `the page tried the WebSocket first (${proxy.refused} upgrades refused)`)
  t.match(await alice.page.locator('#connection').textContent(), /long-poll/, 'the header says how it is connected')

  await bob.page.getByLabel('Start a conversation with').fill('alice')
  await bob.page.getByRole('button', { name: 'Start', exact: true }).click()
  await bob.page.getByRole('heading', { name: 'alice' }).waitFor()

  // the conversation reaches Alice through her event queue
  const alicesItem = alice.page.locator('#conversations button', { hasText: 'bob' })
  await alicesItem.waitFor()
  await alicesItem.click()
  const aliceComposer = alice.page.getByRole('textbox', { name: 'Message' })
  await aliceComposer.fill('Sent without a WebSocket')
  await aliceComposer.press('Enter')
  const own = alice.page.locator('#messages li.msg.own', { hasText: 'Sent without a WebSocket' })
  await own.waitFor()
  await bob.page.locator('#messages li.msg.theirs', { hasText: 'Sent without a WebSocket' }).waitFor()
  // Bob has it open and reads it; the receipt comes back to Alice over long-poll
  await own.locator('.mark[data-status="read"]').waitFor()

  const bobComposer = bob.page.getByRole('textbox', { name: 'Message' })
  await bobComposer.pressSequentially('Got it')
  await alice.page.locator('#typing', { hasText: 'bob is typing…' }).waitFor()
  await bobComposer.press('Enter')
  await alice.page.locator('#messages li.msg.theirs', { hasText: 'Got it' }).waitFor()
  await alice.page.locator('#typing', { hasText: 'typing' }).waitFor({ state: 'detached' })
  await bob.page.locator('#messages li.msg.own', { hasText: 'Got it' }).locator('.mark[data-status="read"]').waitFor()
  t.equal(await alice.page.locator('#connection').getAttribute('data-transport'), 'longpoll', 'still on long-poll throughout')

  // the browser itself reports the refused handshakes, and the 410 of an event queue the
  // SDK replaced (to follow a new conversation's typing); anything else is the page's fault
  t.same(alice.errors.filter(e => !/WebSocket|Failed to load resource: .* 410/i.test(e)), [], 'no other errors in Alice\'s page')
  t.same(bob.errors, [], 'no errors in Bob\'s page')
})
