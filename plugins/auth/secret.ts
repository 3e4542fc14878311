// DESIGN.md §2: with no THREADLINE_JWT_SECRET, a random secret is generated once into
// the data dir (so tokens survive restarts) and a warning says so.
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { MIN_JWT_SECRET_BYTES, type Config } from '../../broker/config.js'

export interface ResolvedSecret { secret: string, generatedAt: string | null }

export async function resolveJwtSecret (config: Pick<Config, 'jwtSecret' | 'dataDir'>): Promise<ResolvedSecret> {
  if (config.jwtSecret !== null) return { secret: config.jwtSecret, generatedAt: null }
  const file = path.join(config.dataDir, 'jwt-secret')
  try {
    const existing = (await readFile(file, 'utf8')).trim()
    if (Buffer.byteLength(existing) >= MIN_JWT_SECRET_BYTES) return { secret: existing, generatedAt: file }
    // written by hand or by an old version: refusing beats silently signing with a weak key
    if (existing !== '') throw new Error(`${file} holds a secret shorter than ${MIN_JWT_SECRET_BYTES} bytes: delete it (a new one is generated) or set THREADLINE_JWT_SECRET`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await mkdir(config.dataDir, { recursive: true })
  const secret = randomBytes(32).toString('base64url')
  // 'wx': two processes starting at once must not each write their own secret
  try {
    await writeFile(file, secret + '\n', { mode: 0o600, flag: 'wx' })
    return { secret, generatedAt: file }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return { secret: (await readFile(file, 'utf8')).trim(), generatedAt: file }
  }
}
