// Stand-ins for APNs and FCM that speak their real protocols, for the real @parse/node-apn
// and firebase-admin clients to talk to: an HTTP/2 TLS server answering like APNs
// (POST /3/device/<token>, an ES256 provider token, apns-topic, apns-push-type) and an
// HTTPS server answering like FCM's HTTP v1 API and Google's OAuth2 token endpoint (an
// RS256 assertion from the service account). Both serve the certificate of the run's
// test CA (test/services/tls.ts), which the clients trust through NODE_EXTRA_CA_CERTS.
import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import https from 'node:https'
import type net from 'node:net'
import path from 'node:path'
import { tempDir } from './node.js'
import { withTimeout } from './wait.js'

interface Teardownable { teardown(fn: () => unknown): void }

function serverTls (): { key: Buffer, cert: Buffer } {
  const dir = process.env.TEST_TLS_DIR
  if (dir === undefined || process.env.NODE_EXTRA_CA_CERTS === undefined) {
    throw new Error('the push fakes need the test CA: run them through `npm test` (test/run.ts makes it and sets NODE_EXTRA_CA_CERTS)')
  }
  return { key: readFileSync(path.join(dir, 'server.key')), cert: readFileSync(path.join(dir, 'server.pem')) }
}

/** Keys and files a node's push configuration points at, and what the fakes check them with. */
export interface PushCredentials {
  readonly apns: { keyFile: string, keyId: string, teamId: string, topic: string, publicKey: KeyObject }
  readonly fcm: { file: string, projectId: string, clientEmail: string, publicKey: KeyObject }
}

export async function pushCredentials (t: Teardownable): Promise<PushCredentials> {
  const dir = await tempDir(t)
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const keyFile = path.join(dir, 'AuthKey_ABCDE12345.p8')
  await writeFile(keyFile, ec.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const projectId = 'threadline-test'
  const clientEmail = `push@${projectId}.iam.gserviceaccount.com`
  const file = path.join(dir, 'service-account.json')
  await writeFile(file, JSON.stringify({
    type: 'service_account',
    project_id: projectId,
    private_key_id: 'k1',
    private_key: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    client_email: clientEmail,
    token_uri: 'https://oauth2.googleapis.com/token'
  }))
  return {
    apns: { keyFile, keyId: 'ABCDE12345', teamId: 'TEAM123456', topic: 'com.example.threadline', publicKey: createPublicKey(ec.privateKey) },
    fcm: { file, projectId, clientEmail, publicKey: createPublicKey(rsa.privateKey) }
  }
}

/** The node's variables for both providers, pointed at the fakes. */
export function pushEnv (creds: PushCredentials, apns: { port: number } | null, fcm: { port: number } | null): Record<string, string> {
  return {
    ...(apns !== null
      ? {
          THREADLINE_APNS_KEY_FILE: creds.apns.keyFile,
          THREADLINE_APNS_KEY_ID: creds.apns.keyId,
          THREADLINE_APNS_TEAM_ID: creds.apns.teamId,
          THREADLINE_APNS_TOPIC: creds.apns.topic,
          THREADLINE_APNS_HOST: `localhost:${apns.port}`
        }
      : {}),
    ...(fcm !== null ? { THREADLINE_FCM_CREDENTIALS: creds.fcm.file, THREADLINE_FCM_HOST: `localhost:${fcm.port}` } : {})
  }
}

// ── JWTs ───────────────────────────────────────────────────────────────────────────────

function decodeJwt (jwt: string, alg: 'ES256' | 'RS256', key: KeyObject): { header: Record<string, unknown>, claims: Record<string, unknown> } | null {
  const [h, p, s] = jwt.split('.')
  if (h === undefined || p === undefined || s === undefined) return null
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key, Buffer.from(s, 'base64url'))
  if (!ok) return null
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>
  if (header.alg !== alg) return null
  return { header, claims: JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown> }
}

const nowS = (): number => Math.floor(Date.now() / 1000)

// ── a recorder both fakes share ─────────────────────────────────────────────────────────

/** What a fake does with one request: answer with a status (and a reason), or never answer. */
export type Answer = { status: number, reason?: string } | 'hang'

class Recorder<R> {
  readonly requests: R[] = []
  /** requests that came and have not been answered (or whose stream has not closed) */
  open = 0
  maxOpen = 0
  answer: (request: R) => Answer = () => ({ status: 200 })
  #waiters: Array<() => void> = []

  record (request: R): void {
    this.requests.push(request)
    this.notify()
  }

  notify (): void {
    for (const wake of this.#waiters.splice(0)) wake()
  }

  opened (): void {
    this.open++
    this.maxOpen = Math.max(this.maxOpen, this.open)
  }

  /** Resolves once `condition` holds, checked on every request; rejects after the usual test wait. */
  until (condition: () => boolean, what: string, ms?: number): Promise<void> {
    return withTimeout((async () => {
      while (!condition()) await new Promise<void>(resolve => this.#waiters.push(resolve))
    })(), what, ms)
  }
}

// ── APNs ───────────────────────────────────────────────────────────────────────────────

export interface ApnsPush {
  readonly token: string
  readonly topic: string | undefined
  readonly pushType: string | undefined
  readonly collapseId: string | undefined
  readonly payload: { aps: { alert?: { title?: string, body: string }, badge?: number, sound?: string }, conv_id: string, seq: number }
}

export class FakeApns extends Recorder<ApnsPush> {
  port = 0
  /** requests refused before they reached `answer` (a bad provider token, topic or push type) */
  readonly refused: string[] = []
}

export async function startFakeApns (t: Teardownable, creds: PushCredentials['apns']): Promise<FakeApns> {
  const fake = new FakeApns()
  const sessions = new Set<http2.ServerHttp2Session>()
  const server = http2.createSecureServer({ ...serverTls() })
  server.on('session', (session) => {
    sessions.add(session)
    session.on('close', () => sessions.delete(session))
  })
  server.on('stream', (stream, headers) => {
    fake.opened()
    stream.on('close', () => { fake.open--; fake.notify() })
    let body = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => { body += chunk })
    stream.on('end', () => {
      const refuse = (status: number, reason: string): void => {
        fake.refused.push(reason)
        fake.notify()
        stream.respond({ ':status': status, 'content-type': 'application/json' })
        stream.end(JSON.stringify({ reason }))
      }
      const path = String(headers[':path'])
      const match = /^\/3\/device\/([0-9a-fA-F]+)$/.exec(path)
      if (headers[':method'] !== 'POST' || match === null) return refuse(404, 'BadPath')
      // https://developer.apple.com/documentation/usernotifications/establishing-a-token-based-connection-to-apns
      const auth = /^bearer (.+)$/.exec(String(headers.authorization ?? ''))
      if (auth === null) return refuse(403, 'MissingProviderToken')
      const jwt = decodeJwt(auth[1] as string, 'ES256', creds.publicKey)
      if (jwt === null || jwt.header.kid !== creds.keyId || jwt.claims.iss !== creds.teamId) return refuse(403, 'InvalidProviderToken')
      if (typeof jwt.claims.iat !== 'number' || Math.abs(nowS() - jwt.claims.iat) > 3600) return refuse(403, 'ExpiredProviderToken')
      if (headers['apns-topic'] !== creds.topic) return refuse(400, headers['apns-topic'] === undefined ? 'MissingTopic' : 'BadTopic')
      if (headers['apns-push-type'] !== 'alert') return refuse(400, 'InvalidPushType')
      const collapse = headers['apns-collapse-id']
      if (typeof collapse === 'string' && Buffer.byteLength(collapse) > 64) return refuse(400, 'BadCollapseId')
      let payload: ApnsPush['payload']
      try {
        payload = JSON.parse(body) as ApnsPush['payload']
      } catch {
        return refuse(400, 'PayloadEmpty')
      }
      const push: ApnsPush = {
        token: match[1] as string,
        topic: headers['apns-topic'],
        pushType: headers['apns-push-type'] as string | undefined,
        collapseId: collapse as string | undefined,
        payload
      }
      const answer = fake.answer(push)
      fake.record(push)
      if (answer === 'hang') return
      const head: http2.OutgoingHttpHeaders = { ':status': answer.status, 'apns-id': '00000000-0000-0000-0000-000000000001' }
      if (answer.status === 200) {
        stream.respond(head, { endStream: true })
        return
      }
      stream.respond({ ...head, 'content-type': 'application/json' })
      stream.end(JSON.stringify({ reason: answer.reason ?? 'InternalServerError', ...(answer.status === 410 ? { timestamp: Date.now() } : {}) }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, 'localhost', resolve))
  fake.port = (server.address() as net.AddressInfo).port
  t.teardown(() => {
    for (const session of sessions) session.destroy()
    return new Promise<void>(resolve => server.close(() => resolve()))
  })
  return fake
}

// ── FCM ────────────────────────────────────────────────────────────────────────────────

export interface FcmPush {
  readonly token: string
  readonly message: {
    token: string
    notification?: { title?: string, body?: string }
    data?: Record<string, string>
    android?: { collapse_key?: string, priority?: string, notification?: { tag?: string, notification_count?: number } }
    webpush?: { notification?: { tag?: string } }
  }
}

export class FakeFcm extends Recorder<FcmPush> {
  port = 0
  /** access tokens handed out by the OAuth2 endpoint */
  readonly accessTokens = new Set<string>()
  readonly refused: string[] = []
}

const FCM_ERROR = 'type.googleapis.com/google.firebase.fcm.v1.FcmError'
const STATUS_NAMES: Record<number, string> = { 400: 'INVALID_ARGUMENT', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' }

export async function startFakeFcm (t: Teardownable, creds: PushCredentials['fcm']): Promise<FakeFcm> {
  const fake = new FakeFcm()
  const server = https.createServer({ ...serverTls() }, (req, res) => {
    fake.opened()
    res.on('close', () => { fake.open--; fake.notify() })
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      const json = (status: number, value: unknown, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers })
        res.end(JSON.stringify(value))
      }
      const refuse = (status: number, why: string): void => {
        fake.refused.push(why)
        fake.notify()
        json(status, { error: { code: status, message: why, status: STATUS_NAMES[status] ?? 'UNAUTHENTICATED' } })
      }
      // Google's OAuth2 token endpoint: a JWT bearer grant signed with the service account's key
      if (req.method === 'POST' && req.url === '/token' && req.headers.host === 'oauth2.googleapis.com') {
        const form = new URLSearchParams(body)
        const jwt = form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer'
          ? decodeJwt(form.get('assertion') ?? '', 'RS256', creds.publicKey)
          : null
        const claims = jwt?.claims
        if (claims === undefined || claims.iss !== creds.clientEmail || claims.aud !== 'https://oauth2.googleapis.com/token' ||
          !String(claims.scope ?? '').split(' ').includes('https://www.googleapis.com/auth/firebase.messaging')) {
          fake.refused.push('invalid_grant')
          return json(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' })
        }
        const accessToken = `ya29.fake-${fake.accessTokens.size + 1}`
        fake.accessTokens.add(accessToken)
        return json(200, { access_token: accessToken, expires_in: 3599, token_type: 'Bearer' })
      }
      // FCM HTTP v1: https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send
      if (req.method !== 'POST' || req.url !== `/v1/projects/${creds.projectId}/messages:send` || req.headers.host !== 'fcm.googleapis.com') {
        return refuse(404, `no such endpoint: ${req.method ?? ''} ${req.headers.host ?? ''}${req.url ?? ''}`)
      }
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
      if (bearer === null || !fake.accessTokens.has(bearer[1] as string)) return refuse(401, 'Request had invalid authentication credentials.')
      let message: FcmPush['message']
      try {
        message = (JSON.parse(body) as { message: FcmPush['message'] }).message
      } catch {
        return refuse(400, 'Invalid JSON payload received.')
      }
      const push: FcmPush = { token: message.token, message }
      const answer = fake.answer(push)
      fake.record(push)
      if (answer === 'hang') return
      if (answer.status === 200) return json(200, { name: `projects/${creds.projectId}/messages/0:${fake.requests.length}` })
      json(answer.status, {
        error: {
          code: answer.status,
          message: answer.reason ?? 'error',
          status: STATUS_NAMES[answer.status] ?? 'UNKNOWN',
          details: [{ '@type': FCM_ERROR, errorCode: answer.reason ?? STATUS_NAMES[answer.status] ?? 'UNSPECIFIED_ERROR' }]
        }
      })
    })
  })
  await new Promise<void>(resolve => server.listen(0, 'localhost', resolve))
  fake.port = (server.address() as net.AddressInfo).port
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>(resolve => server.close(() => resolve()))
  })
  return fake
}
