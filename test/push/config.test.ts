// The push plugin's variables (THREADLINE_APNS_*, THREADLINE_FCM_*, THREADLINE_PUSH_*):
// parsed with every other variable, credentials read and checked at startup; a bad key
// file stops the node with exit code 2 and names its variable.
import { generateKeyPairSync } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../../broker/config.js'
import type { PushOptions } from '../../plugins/push/config.js'
import { tempDir } from '../helpers/node.js'
import { pushCredentials } from '../helpers/push-fakes.js'
import { spawnServer } from '../helpers/spawn-node.js'

const push = (env: Record<string, string>): PushOptions => loadConfig(env).plugins.push as PushOptions

t.test('nothing set: push is off, the window is 200 ms', async (t) => {
  t.match(push({}), { apns: null, fcm: null, windowMs: 200, queueMax: 10_000, retries: 3 })
  t.equal(push({ THREADLINE_PUSH_WINDOW_MS: '50' }).windowMs, 50)
  t.throws(() => push({ THREADLINE_PUSH_WINDOW_MS: 'soon' }), new ConfigError('THREADLINE_PUSH_WINDOW_MS', 'expected a whole number, got "soon"'))
  t.notOk('pushWindowMs' in loadConfig({}), 'the window is the plugin\'s, not the core config\'s')
})

t.test('APNs: all four variables or none, each checked', async (t) => {
  const creds = await pushCredentials(t)
  const apns = {
    THREADLINE_APNS_KEY_FILE: creds.apns.keyFile,
    THREADLINE_APNS_KEY_ID: creds.apns.keyId,
    THREADLINE_APNS_TEAM_ID: creds.apns.teamId,
    THREADLINE_APNS_TOPIC: creds.apns.topic
  }
  t.match(push(apns).apns, { keyId: 'ABCDE12345', teamId: 'TEAM123456', topic: 'com.example.threadline', production: false, endpoint: null })
  t.match(push({ ...apns, THREADLINE_APNS_ENV: 'production', THREADLINE_APNS_HOST: 'push-proxy.internal:8443' }).apns, { production: true, endpoint: { host: 'push-proxy.internal', port: 8443 } })
  t.match(push({ ...apns, THREADLINE_APNS_HOST: '[::1]:2197' }).apns, { endpoint: { host: '::1', port: 2197 } })

  const { THREADLINE_APNS_TEAM_ID: _team, ...withoutTeam } = apns
  t.throws(() => push(withoutTeam), /THREADLINE_APNS_TEAM_ID: is required/)
  t.throws(() => push({ ...apns, THREADLINE_APNS_KEY_ID: 'short' }), /THREADLINE_APNS_KEY_ID: must be the 10-character key id/)
  t.throws(() => push({ ...apns, THREADLINE_APNS_TOPIC: 'com example' }), /THREADLINE_APNS_TOPIC/)
  t.throws(() => push({ ...apns, THREADLINE_APNS_ENV: 'staging' }), /THREADLINE_APNS_ENV: must be one of production, sandbox/)
  t.throws(() => push({ ...apns, THREADLINE_APNS_HOST: 'no-port' }), /THREADLINE_APNS_HOST: must be host:port/)
  t.throws(() => push({ ...apns, THREADLINE_APNS_HOST: 'host:99999' }), /THREADLINE_APNS_HOST: must be host:port/)
  t.throws(() => push({ THREADLINE_APNS_HOST: 'localhost:443' }), /THREADLINE_APNS_HOST: is set but APNs is off/)

  const dir = await tempDir(t)
  t.throws(() => push({ ...apns, THREADLINE_APNS_KEY_FILE: path.join(dir, 'missing.p8') }), /THREADLINE_APNS_KEY_FILE: cannot read .*missing\.p8 \(ENOENT\)/)
  const garbage = path.join(dir, 'garbage.p8')
  await writeFile(garbage, 'not a key')
  t.throws(() => push({ ...apns, THREADLINE_APNS_KEY_FILE: garbage }), /THREADLINE_APNS_KEY_FILE: .*holds no private key/)
  const rsa = path.join(dir, 'rsa.p8')
  await writeFile(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }))
  t.throws(() => push({ ...apns, THREADLINE_APNS_KEY_FILE: rsa }), /THREADLINE_APNS_KEY_FILE: .*is not an APNs auth key/)
})

t.test('FCM: a service-account key file, checked', async (t) => {
  const creds = await pushCredentials(t)
  t.match(push({ THREADLINE_FCM_CREDENTIALS: creds.fcm.file }).fcm, { file: creds.fcm.file, serviceAccount: { project_id: 'threadline-test', client_email: creds.fcm.clientEmail }, endpoint: null })
  t.match(push({ THREADLINE_FCM_CREDENTIALS: creds.fcm.file, THREADLINE_FCM_HOST: 'localhost:9443' }).fcm, { endpoint: { host: 'localhost', port: 9443 } })
  t.throws(() => push({ THREADLINE_FCM_HOST: 'localhost:9443' }), /THREADLINE_FCM_HOST: is set but FCM is off/)

  const dir = await tempDir(t)
  const file = async (name: string, content: string): Promise<string> => {
    const p = path.join(dir, name)
    await writeFile(p, content)
    return p
  }
  t.throws(() => push({ THREADLINE_FCM_CREDENTIALS: path.join(dir, 'nope.json') }), /THREADLINE_FCM_CREDENTIALS: cannot read .* \(ENOENT\)/)
  const text = await file('text.json', 'hello')
  const user = await file('user.json', '{"type":"authorized_user"}')
  const partial = await file('partial.json', '{"type":"service_account","project_id":"p"}')
  const badKey = await file('badkey.json', JSON.stringify({ type: 'service_account', project_id: 'p', client_email: 'e@p', private_key: 'nope' }))
  t.throws(() => push({ THREADLINE_FCM_CREDENTIALS: text }), /THREADLINE_FCM_CREDENTIALS: .* is not JSON/)
  t.throws(() => push({ THREADLINE_FCM_CREDENTIALS: user }), /THREADLINE_FCM_CREDENTIALS: .* is not a service-account key file/)
  t.throws(() => push({ THREADLINE_FCM_CREDENTIALS: partial }), /THREADLINE_FCM_CREDENTIALS: .* has no "client_email"/)
  t.throws(() => push({ THREADLINE_FCM_CREDENTIALS: badKey }), /THREADLINE_FCM_CREDENTIALS: the "private_key" of .* is not a PEM private key/)
})

t.test('a bad key file stops the server with exit code 2, naming the variable', async (t) => {
  const dir = await tempDir(t)
  const p8 = path.join(dir, 'AuthKey.p8')
  await writeFile(p8, 'not a key')
  const started = spawnServer(t, {
    env: {
      THREADLINE_DATA_DIR: dir,
      THREADLINE_JWT_SECRET: 'test-secret-0123456789abcdef-0123456789',
      THREADLINE_APNS_KEY_FILE: p8,
      THREADLINE_APNS_KEY_ID: 'ABCDE12345',
      THREADLINE_APNS_TEAM_ID: 'TEAM123456',
      THREADLINE_APNS_TOPIC: 'com.example.threadline'
    }
  })
  await t.rejects(started, /server exited \(code 2, signal null\)[\s\S]*configuration error: THREADLINE_APNS_KEY_FILE: /)
})
