// The load balancer of the deployment tests: Debian's `haproxy`, the one docs/deploy.md puts
// in front of a cluster. Installed with apt-get like PostgreSQL and Redis when the run
// includes those tests and we are root; otherwise the message says what to install. The
// tests run it themselves (foreground, their own config, as the current user): the
// package's own service is not used.
import { ensureBinary } from './debian.js'
import { runsTestsUnder, which } from './util.js'

/** Where the tests that need HAProxy live. */
export const DEPLOY_TESTS = 'test/deploy'

export const haproxyBin = (): string | undefined => which('haproxy')

/** Whether tap's arguments select a test that needs HAProxy (see runsTestsUnder). */
export function runsHaproxyTests (args: readonly string[], cwd: string): boolean {
  return runsTestsUnder(args, cwd, DEPLOY_TESTS)
}

export const ensureHaproxy = (): Promise<string> => ensureBinary(haproxyBin, 'haproxy', 'the deployment tests need Debian\'s haproxy')
