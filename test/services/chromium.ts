// The browser of the web page's tests: Debian's `chromium`, driven by playwright-core (which
// brings no browser of its own). Installed with apt-get like PostgreSQL and Redis when the
// run includes browser tests and we are root; otherwise the message says what to install.
import path from 'node:path'
import { isRoot } from './debian.js'
import { UsageError, mustRun, which } from './util.js'

/** Where the browser tests live: a run that can't reach them needs no browser. */
export const BROWSER_TESTS = 'test/clients/web'

export const chromiumBin = (): string | undefined => which('chromium') ?? which('chromium-browser')

/**
 * Whether tap's arguments select a browser test: no paths (the whole suite), or a path
 * that is, or contains, the browser tests' folder.
 */
export function runsBrowserTests (args: readonly string[], cwd: string): boolean {
  const paths = args.filter(a => !a.startsWith('-')).map(a => path.relative(cwd, path.resolve(cwd, a)))
  if (paths.length === 0) return true
  return paths.some(p => p === '' || BROWSER_TESTS === p || BROWSER_TESTS.startsWith(p + path.sep) || p.startsWith(BROWSER_TESTS + path.sep))
}

export async function ensureChromium (): Promise<string> {
  const found = chromiumBin()
  if (found !== undefined) return found
  const hint = 'sudo apt-get install chromium, or run only other tests'
  if (!isRoot || !which('apt-get')) throw new UsageError(`the web page's tests need Debian's chromium: ${hint}`)
  console.error('[test] installing chromium with apt-get')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  await mustRun('apt-get', ['update'], { env, quiet: true })
  await mustRun('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], { env, quiet: true })
  const installed = chromiumBin()
  if (installed === undefined) throw new UsageError('chromium installed, but not found on PATH')
  return installed
}
