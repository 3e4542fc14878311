// Finding (and on a bare Debian machine, installing) the PostgreSQL and Redis server binaries.
import { readdirSync, existsSync } from 'node:fs'
import path from 'node:path'
import { UsageError, mustRun, run, which } from './util.js'

export const isRoot = process.getuid?.() === 0

/** bin dir of the newest Debian-packaged PostgreSQL (/usr/lib/postgresql/<major>/bin). */
export function pgBinDir (): string | undefined {
  const base = '/usr/lib/postgresql'
  let versions: string[]
  try { versions = readdirSync(base) } catch { return undefined }
  return versions
    .map(v => path.join(base, v, 'bin'))
    .filter(bin => existsSync(path.join(bin, 'initdb')) && existsSync(path.join(bin, 'pg_ctl')))
    .sort((a, b) => parseFloat(path.basename(path.dirname(b))) - parseFloat(path.basename(path.dirname(a))))[0]
}

export const redisBin = () => which('redis-server')

/**
 * Makes sure the server binaries we are about to start exist. As root (CI, containers) we
 * install them; otherwise we don't sudo behind the user's back and say what to do instead.
 */
export async function ensurePackages (need: { postgres: boolean; redis: boolean }): Promise<void> {
  const missing: string[] = []
  if (need.postgres && !pgBinDir()) missing.push('postgresql')
  if (need.redis && !redisBin()) missing.push('redis-server')
  if (missing.length === 0) return
  const hint = `install ${missing.length > 1 ? 'them' : 'it'} (sudo apt-get install ${missing.join(' ')}), ` +
    'or set DATABASE_URL / REDIS_URL to servers you run yourself'
  if (!isRoot) throw new UsageError(`the test suite needs ${missing.join(' and ')}: ${hint}`)
  if (!which('apt-get')) throw new UsageError(`no apt-get to install ${missing.join(' ')} with: ${hint}`)
  console.error(`[test] installing ${missing.join(' ')} with apt-get`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  await mustRun('apt-get', ['update'], { env })
  await mustRun('apt-get', ['install', '-y', ...missing], { env })
  if (need.postgres && !pgBinDir()) throw new UsageError('postgresql installed, but no /usr/lib/postgresql/*/bin/initdb')
  if (need.redis && !redisBin()) throw new UsageError('redis-server installed, but not found on PATH')
}

/**
 * Installs Debian packages a part of the suite needs, as root with apt-get; otherwise (or
 * with no apt-get) stops with `need` and `hint`, the command for the user to run.
 */
export async function aptInstall (packages: readonly string[], need: string, hint: string): Promise<void> {
  if (!isRoot || !which('apt-get')) throw new UsageError(`${need}: ${hint}`)
  console.error(`[test] installing ${packages.join(' ')} with apt-get`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  await mustRun('apt-get', ['update'], { env, quiet: true })
  await mustRun('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env, quiet: true })
}

/**
 * The path of the binary `find` looks for, installing Debian package `pkg` first when it
 * is missing (see aptInstall); `need` says which tests want it.
 */
export async function ensureBinary (find: () => string | undefined, pkg: string, need: string): Promise<string> {
  const found = find()
  if (found !== undefined) return found
  await aptInstall([pkg], need, `sudo apt-get install ${pkg}, or run only other tests`)
  const installed = find()
  if (installed === undefined) throw new UsageError(`${pkg} installed, but not found on PATH`)
  return installed
}

/** PostgreSQL refuses to run as root, so as root its server tools run as the postgres user. */
export async function postgresOwner (): Promise<{ uid: number; gid: number } | undefined> {
  if (!isRoot) return undefined
  if ((await run('id', ['-u', 'postgres'], { quiet: true })).code !== 0) {
    // Debian's postgresql package creates this user; a hand-built install may not have.
    await mustRun('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { quiet: true })
  }
  const uid = Number(await mustRun('id', ['-u', 'postgres'], { quiet: true }))
  const gid = Number(await mustRun('id', ['-g', 'postgres'], { quiet: true }))
  return { uid, gid }
}

/** cmd/args to run a PostgreSQL server tool, wrapped in runuser when we are root. */
export function asPostgres (cmd: string, args: string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
}
