// FCM's HTTP v1 API with service-account credentials, through firebase-admin 13.
import https from 'node:https'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { randomUUID } from 'node:crypto'
import { cert, deleteApp, initializeApp } from 'firebase-admin/app'
import { getMessaging, type Message } from 'firebase-admin/messaging'
import type { Platform } from '../../schemas/index.js'
import type { Endpoint, FcmOptions } from './config.js'
import type { Notification } from './notification.js'
import type { Outcome, Provider } from './provider.js'

/** sockets to Google (or THREADLINE_FCM_HOST) at once; the delivery queue bounds requests the same way */
const MAX_SOCKETS = 16

/**
 * Sends every request to `endpoint` whatever host it names. firebase-admin hard-codes
 * fcm.googleapis.com and oauth2.googleapis.com (it ignores the key file's token_uri), so
 * an agent is the one place that can point it elsewhere: given to cert() for the OAuth
 * token and as httpAgent for the sends. The certificate is checked against the
 * endpoint's own name, with Node's trust store (NODE_EXTRA_CA_CERTS adds to it).
 */
class EndpointAgent extends https.Agent {
  constructor (readonly endpoint: Endpoint, options: https.AgentOptions) {
    super(options)
  }

  override createConnection (options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex {
    const { host, port } = this.endpoint
    return super.createConnection({ ...options, host, port, servername: net.isIP(host) === 0 ? host : undefined }, callback) as tls.TLSSocket
  }
}

export function fcmProvider (options: FcmOptions): Provider {
  const agentOptions: https.AgentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS }
  const agent = options.endpoint !== null ? new EndpointAgent(options.endpoint, agentOptions) : new https.Agent(agentOptions)
  // A path, not the parsed object: firebase-admin 13 hands the agent to google-auth-library
  // only for a key file it reads itself (with an object, the OAuth request ignores it).
  // cert() keeps one credential per path for the process's life, with the agent of its
  // first call: one node per process (npm start) never notices; tests that run several
  // nodes in one process give each its own key file.
  // A name of its own: several nodes may live in one process (tests), each with its app.
  const app = initializeApp({
    credential: cert(options.file, agent),
    httpAgent: agent,
    projectId: options.serviceAccount.project_id
  }, `threadline-push-${randomUUID()}`)
  const messaging = getMessaging(app)
  return {
    name: 'fcm',
    async send (pushToken, platform, n) {
      try {
        // send(), not sendEach(): sendEach goes over HTTP/2 and ignores the agent
        await messaging.send(fcmMessage(pushToken, platform, n))
        return { kind: 'sent' }
      } catch (err) {
        return classify(err)
      }
    },
    async close () {
      // ends requests still waiting for an answer (firebase-admin has no way to abort them)
      agent.destroy()
      await deleteApp(app)
    }
  }
}

function fcmMessage (token: string, platform: Platform, n: Notification): Message {
  const notification = n.title !== null ? { title: n.title, body: n.body } : { body: n.body }
  // FCM's data values are strings
  const data = { conv_id: n.convId, seq: String(n.seq), badge: String(n.badge) }
  if (platform === 'android') {
    return {
      token,
      notification,
      data,
      android: {
        priority: 'high',
        // one notification per conversation in the tray: a newer one replaces it
        collapseKey: n.convId,
        notification: { tag: n.convId, notificationCount: n.badge }
      }
    }
  }
  return { token, notification, data, webpush: { notification: { tag: n.convId } } }
}

const GONE = new Set(['messaging/registration-token-not-registered'])
const RETRY = new Set([
  'messaging/server-unavailable', 'messaging/internal-error', 'messaging/unknown-error',
  'messaging/message-rate-exceeded', 'messaging/device-message-rate-exceeded',
  // the OAuth token could not be had (Google's token endpoint unreachable), the network failed
  'app/invalid-credential', 'app/network-error', 'app/network-timeout'
])

/** https://firebase.google.com/docs/cloud-messaging/send/admin-sdk#admin (error codes) */
export function classify (err: unknown): Outcome {
  const code = (err as { code?: unknown }).code
  const reason = `${typeof code === 'string' ? code : 'error'}: ${err instanceof Error ? err.message : String(err)}`
  if (typeof code === 'string' && GONE.has(code)) return { kind: 'gone', reason }
  if (typeof code !== 'string' || RETRY.has(code)) return { kind: 'retry', reason }
  return { kind: 'failed', reason }
}
