// Real headless Chromium (Debian's package, found or installed by test/run.ts) driven by
// playwright-core, for the web page's tests. Each user gets a browser context of their
// own: separate storage, so two pages are two devices of two users.
import { chromium, type Browser, type Page } from 'playwright-core'
import { chromiumBin } from '../services/chromium.js'
import { DEFAULT_WAIT_MS } from './wait.js'

interface Teardownable { teardown(fn: () => unknown): void }

export const VIEWPORT = { width: 1024, height: 720 } as const

export async function launchBrowser (t: Teardownable): Promise<Browser> {
  const executablePath = process.env.THREADLINE_TEST_CHROMIUM ?? chromiumBin()
  if (executablePath === undefined) throw new Error('no chromium: run the browser tests with `npm test` (it installs Debian\'s chromium), or apt-get install chromium')
  const browser = await chromium.launch({ executablePath, headless: true })
  t.teardown(() => browser.close())
  return browser
}

export interface PageOptions {
  /** the page's address; `#token=…` is appended when `token` is given */
  url: string
  token?: string
}

/**
 * A page of its own context (a device of its own), with every wait bounded and the page's
 * console errors and uncaught exceptions collected for the test to check.
 */
export async function openPage (t: Teardownable, browser: Browser, opts: PageOptions): Promise<{ page: Page, errors: string[] }> {
  const context = await browser.newContext({ viewport: VIEWPORT })
  t.teardown(() => context.close())
  context.setDefaultTimeout(DEFAULT_WAIT_MS)
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()) })
  await page.goto(opts.token !== undefined ? `${opts.url}#token=${opts.token}` : opts.url)
  return { page, errors }
}

/** Resolves once the page says it is online, over `transport` when given. */
export async function waitOnline (page: Page, transport?: 'mqtt' | 'longpoll'): Promise<void> {
  const selector = `#connection[data-state="online"]${transport !== undefined ? `[data-transport="${transport}"]` : ''}`
  await page.locator(selector).waitFor()
}

/** Width and height of a PNG, from its IHDR chunk (bytes 16–23), after checking the signature. */
export function pngSize (png: Buffer): { width: number, height: number } {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  if (png.length < 24 || !png.subarray(0, 8).equals(signature) || png.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG')
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
}
