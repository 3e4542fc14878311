// A web app served from another origin calls the REST API from a real browser, which
// enforces CORS as no inject() can: the preflight for a bearer header, then the answer.
import http from 'node:http'
import type net from 'node:net'
import t from 'tap'
import type { Page } from 'playwright-core'
import { launchBrowser, openPage } from '../../helpers/browser.js'
import { startNode, token } from '../../helpers/node.js'

const browser = await launchBrowser(t)

/** A site of its own origin (its own port) serving an empty page. */
async function site (t: Parameters<typeof launchBrowser>[0]): Promise<string> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>another app</title>'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
}

/** What the page gets from GET /v1/conversations with its token: the status, or the browser's refusal. */
async function loadConversations (page: Page, api: string, bearer: string): Promise<string> {
  return await page.evaluate(async ({ api, bearer }) => {
    try {
      const res = await fetch(`${api}/v1/conversations`, { headers: { authorization: `Bearer ${bearer}` } })
      return `${res.status} ${JSON.stringify(Object.keys(await res.json() as object))}`
    } catch (err) {
      return `refused: ${String(err)}`
    }
  }, { api, bearer })
}

t.test('by default a page of any origin loads conversations with its bearer token', async (t) => {
  const node = await startNode(t)
  const { page } = await openPage(t, browser, { url: await site(t) })
  t.equal(await loadConversations(page, `http://127.0.0.1:${node.httpPort}`, token(node, 'ann')), '200 ["conversations","next_cursor"]')
})

t.test('with THREADLINE_CORS_ORIGINS a listed origin may, another is refused by the browser', async (t) => {
  const [listed, other] = [await site(t), await site(t)]
  const node = await startNode(t, { env: { THREADLINE_CORS_ORIGINS: listed } })
  const api = `http://127.0.0.1:${node.httpPort}`
  const bearer = token(node, 'ann')
  const allowed = await openPage(t, browser, { url: listed })
  t.equal(await loadConversations(allowed.page, api, bearer), '200 ["conversations","next_cursor"]')
  const refused = await openPage(t, browser, { url: other })
  t.match(await loadConversations(refused.page, api, bearer), /^refused: TypeError/)
})
