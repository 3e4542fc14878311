// A throwaway certificate authority for one test run, and a server certificate it signed
// for localhost (127.0.0.1, ::1). The fakes of APNs and FCM (test/helpers/push-fakes.ts)
// serve that certificate; the clients under test trust it through NODE_EXTRA_CA_CERTS, the
// way a real deployment trusts a proxy's CA, never by turning TLS checks off. Node reads
// that variable only when a process starts, so run.ts makes the CA before tap starts and
// every test process inherits it.
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { isRoot } from './debian.js'
import { type Defer, UsageError, mustRun, which } from './util.js'

export interface TestCa {
  /** for NODE_EXTRA_CA_CERTS: our CA, after any the caller's environment already trusted */
  readonly caBundle: string
  /** holds server.pem and server.key (for TEST_TLS_DIR) */
  readonly dir: string
}

async function ensureOpenssl (): Promise<void> {
  if (which('openssl')) return
  if (!isRoot || !which('apt-get')) throw new UsageError('the push tests need openssl to make their test CA: sudo apt-get install openssl')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  await mustRun('apt-get', ['update'], { env, quiet: true })
  await mustRun('apt-get', ['install', '-y', 'openssl'], { env, quiet: true })
}

export async function makeTestCa (defer: Defer, inherited: string | undefined): Promise<TestCa> {
  await ensureOpenssl()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'threadline-test-ca-'))
  defer(() => rm(dir, { recursive: true, force: true }))
  const file = (name: string): string => path.join(dir, name)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  const quiet = { quiet: true }
  await mustRun('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2',
    '-subj', '/CN=Threadline test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], quiet)
  await mustRun('openssl', ['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost'], quiet)
  await writeFile(file('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n')
  await mustRun('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('server.pem'), '-days', '2', '-extfile', file('server.ext')], quiet)
  const previous = inherited !== undefined && existsSync(inherited) ? readFileSync(inherited, 'utf8') + '\n' : ''
  await writeFile(file('bundle.pem'), previous + readFileSync(file('ca.pem'), 'utf8'))
  return { caBundle: file('bundle.pem'), dir }
}
