// The browser of the web page's tests: Debian's `chromium`, driven by playwright-core (which
// brings no browser of its own). Installed with apt-get like PostgreSQL and Redis when the
// run includes browser tests and we are root; otherwise the message says what to install.
import { ensureBinary } from './debian.js'
import { runsTestsUnder, which } from './util.js'

/** Where the browser tests live: a run that can't reach them needs no browser. */
export const BROWSER_TESTS = 'test/clients/web'

export const chromiumBin = (): string | undefined => which('chromium') ?? which('chromium-browser')

/** Whether tap's arguments select a browser test (see runsTestsUnder). */
export function runsBrowserTests (args: readonly string[], cwd: string): boolean {
  return runsTestsUnder(args, cwd, BROWSER_TESTS)
}

export const ensureChromium = (): Promise<string> => ensureBinary(chromiumBin, 'chromium', 'the web page\'s tests need Debian\'s chromium')
