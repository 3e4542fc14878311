// Signing in with the paste box, and a long conversation read back page by page.
import t from 'tap'
import { createTokenService } from '../../../core/tokens.js'
import { launchBrowser, openPage, waitOnline } from '../../helpers/browser.js'
import { startNode, token } from '../../helpers/node.js'

const browser = await launchBrowser(t)

t.test('a token pasted into the sign-in box; 60 messages shown 50 at first, the rest on "Load earlier messages"', async (t) => {
  const node = await startNode(t)
  const base = `http://127.0.0.1:${node.httpPort}`
  const bob = token(node, 'bob')
  const call = async (method: string, path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
    return await res.json() as Record<string, unknown>
  }
  const conv = await call('POST', '/v1/conversations', { type: 'direct', members: ['alice'] })
  for (let i = 1; i <= 60; i++) await call('POST', `/v1/conversations/${String(conv.id)}/messages`, { client_msg_id: `m${i}`, type: 'text', text: `message ${i}` })

  const { page, errors } = await openPage(t, browser, { url: `${base}/` })
  const box = page.getByLabel('Token')
  const connect = page.getByRole('button', { name: 'Connect' })
  const signIn = page.locator('#sign-in:not([hidden])')
  await box.fill('not-a-token')
  await connect.click()
  await page.locator('#alert', { hasText: 'That is not a token' }).waitFor()
  await signIn.waitFor()
  // well-formed, but not signed by this server: refused, and the page asks again
  await box.fill(createTokenService('another-secret-0123456789abcdef-0123').sign({ sub: 'alice' }, 600))
  await connect.click()
  await page.locator('#token-hint', { hasText: 'The server refused your token' }).waitFor()
  await signIn.waitFor()
  await box.fill(token(node, 'alice'))
  await connect.click()
  await waitOnline(page)
  t.ok(await page.locator('#sign-in').isHidden(), 'the sign-in box is gone once connected')

  const item = page.locator('#conversations button', { hasText: 'bob' })
  await item.locator('.unread', { hasText: '60' }).waitFor()
  t.match(await item.innerText(), /message 60/)
  t.equal(await page.title(), '(60) Threadline', 'the tab\'s title counts the unread')
  await item.click()
  const texts = page.locator('#messages li.msg .text')
  await page.locator('#messages li.msg', { hasText: 'message 60' }).waitFor()
  t.equal(await texts.count(), 50, 'the newest 50 first')
  t.equal(await texts.first().textContent(), 'message 11')
  const older = page.getByRole('button', { name: 'Load earlier messages' })
  await older.click()
  await page.locator('#messages li.msg .text', { hasText: /^message 1$/ }).waitFor()
  t.equal(await texts.count(), 60)
  t.same((await texts.allInnerTexts()).slice(0, 3), ['message 1', 'message 2', 'message 3'], 'in seq order')
  await older.waitFor({ state: 'hidden' })
  await item.locator('.unread').waitFor({ state: 'detached' })
  t.equal(await page.title(), 'Threadline')

  t.same(errors, [], 'no errors in the page')
})
