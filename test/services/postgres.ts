// A throwaway PostgreSQL cluster for one test run: fresh data dir, loopback only, trust auth.
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { asPostgres, pgBinDir, postgresOwner } from './debian.js'
import { type Defer, freePort, mustRun, run } from './util.js'

export const TEST_DATABASE = 'threadline_test'

/**
 * Starts the cluster, creates the test database and returns its DATABASE_URL.
 * `settings`: more server settings (`-c name=value`), e.g. a library to preload.
 */
export async function startPostgres (defer: Defer, settings: Readonly<Record<string, string>> = {}): Promise<string> {
  const bin = pgBinDir()
  if (!bin) throw new Error('no PostgreSQL binaries under /usr/lib/postgresql')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'threadline-pg-'))
  defer(() => rm(dir, { recursive: true, force: true }))
  const owner = await postgresOwner()
  if (owner) await chown(dir, owner.uid, owner.gid)

  const data = path.join(dir, 'data')
  const log = path.join(dir, 'postgres.log')
  // cwd = dir: as the postgres user our own cwd (e.g. under /root) may be unreadable.
  const pgTool = (tool: string, args: string[]) => run(...asPostgres(path.join(bin, tool), args), { cwd: dir, quiet: true })

  // C.UTF-8 always exists on Debian 12 and makes initdb independent of the caller's LANG.
  const init = await pgTool('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'])
  if (init.code !== 0) throw new Error(`initdb failed:\n${init.output}`)

  // Registered before starting: a start that times out may still leave a server running.
  defer(() => pgTool('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']))

  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    // -k: the Unix socket goes in our temp dir, not /var/run/postgresql (may not exist or be ours).
    const extra = Object.entries(settings).map(([name, value]) => ` -c ${name}=${value}`).join('')
    const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on${extra}`
    const start = await pgTool('pg_ctl', ['start', '-w', '-t', '60', '-D', data, '-l', log, '-o', opts])
    if (start.code === 0) {
      await mustRun(path.join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', TEST_DATABASE], { quiet: true })
      return `postgres://postgres@127.0.0.1:${port}/${TEST_DATABASE}`
    }
    // Most likely someone took the port between freePort() and bind: try another.
    if (attempt === 3) {
      const serverLog = await readFile(log, 'utf8').catch(() => '')
      throw new Error(`PostgreSQL did not start:\n${start.output}\n${serverLog.slice(-4000)}`)
    }
  }
}
