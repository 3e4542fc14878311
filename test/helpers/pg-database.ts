// A fresh PostgreSQL database per test file, so files run in parallel against the one
// throwaway server test/run.ts started (DATABASE_URL).
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export function adminUrl (): string | null {
  return process.env.DATABASE_URL ?? null
}

export async function createDatabase (): Promise<{ url: string, drop: () => Promise<void> }> {
  const admin = adminUrl()
  if (admin === null) throw new Error('DATABASE_URL is not set: run the suite with npm test')
  const name = 't_' + randomBytes(6).toString('hex')
  const client = new pg.Client({ connectionString: admin })
  await client.connect()
  await client.query(`CREATE DATABASE ${name}`)
  await client.end()
  const url = new URL(admin)
  url.pathname = '/' + name
  return {
    url: url.toString(),
    async drop () {
      const c = new pg.Client({ connectionString: admin })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    }
  }
}
