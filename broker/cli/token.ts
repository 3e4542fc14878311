// `npm run token -- <user> [--role user|integrator|admin] [--ttl 1h] [--name "Display Name"]`
// Prints a token signed with the configured secret (THREADLINE_JWT_SECRET, or the one
// generated into the data dir), for mosquitto_pub/sub, MQTT.js or curl. The claims pass
// the server's own check (checkClaims) and carry THREADLINE_JWT_ISSUER/AUDIENCE when set,
// so a printed token is one the server accepts.
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../config.js'
import type { Role } from '../identity.js'
import { resolveJwtSecret } from '../../plugins/auth/secret.js'
import { TokenError, createTokenService, parseTtl } from '../../core/tokens.js'

const USAGE = 'usage: npm run token -- <user> [--role user|integrator|admin] [--ttl 1h] [--name "Display Name"]'

function fail (message: string): never {
  process.stderr.write(`token: ${message}\n${USAGE}\n`)
  process.exit(2)
}

async function main (): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: { role: { type: 'string', default: 'user' }, ttl: { type: 'string', default: '1h' }, name: { type: 'string' }, help: { type: 'boolean', short: 'h' } }
    })
  } catch (err) {
    fail((err as Error).message)
  }
  if (parsed.values.help === true) {
    process.stdout.write(USAGE + '\n')
    return
  }
  if (parsed.positionals.length !== 1) fail('give exactly one user id')
  const role = parsed.values.role as string
  try {
    const ttlS = parseTtl(parsed.values.ttl as string)
    const config = loadConfig()
    const { secret, generatedAt } = await resolveJwtSecret(config)
    if (generatedAt !== null) process.stderr.write(`token: signed with the development secret in ${generatedAt} (THREADLINE_JWT_SECRET is not set)\n`)
    const tokens = createTokenService(secret, { issuer: config.jwtIssuer, audience: config.jwtAudience })
    const name = parsed.values.name
    process.stdout.write(tokens.sign({ sub: parsed.positionals[0] as string, role: role as Role, ...(name !== undefined ? { name } : {}) }, ttlS) + '\n')
  } catch (err) {
    if (err instanceof TokenError || err instanceof ConfigError) fail(err.message)
    throw err
  }
}

await main()
