// One MQTT connection (TCP or WebSocket, whatever the URL says). A connection is never
// reconnected in place: the manager opens a new one with its own backoff (full jitter,
// which MQTT.js's fixed reconnectPeriod lacks) and the current token, and the outbox, not
// MQTT.js's in-memory store, resends what is unacknowledged, so a send is never retried by
// two layers at once. The server-side session (clean: false, one clientId per device)
// keeps the subscriptions and the offline queue between connections.
import mqtt, { type MqttClient } from 'mqtt'
import { AuthRefused, type Follow, type Inbound, type SendAck, type SendPayload, type Transport, type TransportSink } from './transport.js'

export interface MqttParams {
  url: string
  userId: string
  deviceId: string
  token: string
  keepaliveS: number
  connectTimeoutMs: number
  follow: Follow
  /** abandons the attempt (the client is closing) */
  signal: AbortSignal
}

const decoder = new TextDecoder()

export class MqttTransport implements Transport {
  readonly kind = 'mqtt'
  readonly resumed: boolean
  readonly #client: MqttClient
  readonly #userId: string
  readonly #typing = new Set<string>()
  readonly #presence = new Set<string>()
  #closed = false

  private constructor (client: MqttClient, userId: string, resumed: boolean) {
    this.#client = client
    this.#userId = userId
    this.resumed = resumed
  }

  /** Connects and subscribes the inbox; rejects with AuthRefused for CONNACK 4/5. */
  static async open (params: MqttParams, sink: TransportSink): Promise<MqttTransport> {
    const client = mqtt.connect(params.url, {
      clientId: `${params.userId}:${params.deviceId}`,
      username: params.userId,
      password: params.token,
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0,
      resubscribe: false,
      keepalive: params.keepaliveS,
      connectTimeout: params.connectTimeoutMs
    })
    // The offline queue follows the CONNACK in the same read: listen before it arrives.
    client.on('message', (topic, payload) => {
      const envelope = parse(topic, payload, params.userId)
      if (envelope !== null) sink.envelope(envelope)
    })
    let onError = (_err: Error & { code?: unknown }): void => {}
    let onClose = (): void => {}
    const onAbort = (): void => { void client.endAsync(true).catch(() => {}) }
    params.signal.addEventListener('abort', onAbort)
    let connack: { sessionPresent: boolean }
    try {
      if (params.signal.aborted) throw new Error('the connection attempt was abandoned')
      connack = await new Promise((resolve, reject) => {
        onError = (err) => {
          const code = typeof err.code === 'number' ? err.code : 0
          reject(code === 4 || code === 5 ? new AuthRefused(err.message, code) : err)
        }
        onClose = () => reject(new Error(`no MQTT connection to ${params.url}`))
        client.once('connect', resolve)
        client.on('error', onError)
        client.once('close', onClose)
      })
      await client.subscribeAsync(`user/${params.userId}/inbox`, { qos: 1 })
    } catch (err) {
      client.on('error', () => {})
      await client.endAsync(true).catch(() => {})
      throw err
    } finally {
      client.off('error', onError)
      client.off('close', onClose)
      params.signal.removeEventListener('abort', onAbort)
    }
    const transport = new MqttTransport(client, params.userId, connack.sessionPresent)
    // later errors (a keepalive timeout, a reset) end in 'close', which is what counts;
    // an 'error' without a listener would be thrown
    client.on('error', () => {})
    client.once('close', () => {
      if (transport.#closed) return
      transport.#closed = true
      void client.endAsync(true).catch(() => {})
      sink.down(new Error('the MQTT connection closed'))
    })
    void transport.follow(params.follow)
    return transport
  }

  async send (convId: string, payload: SendPayload): Promise<SendAck | null> {
    await this.#client.publishAsync(`conv/${convId}/send`, JSON.stringify(payload), { qos: 1 })
    return null // the seq comes as the event on the inbox
  }

  async receipt (convId: string, status: 'delivered' | 'read', seq: number): Promise<void> {
    await this.#client.publishAsync(`conv/${convId}/read`, JSON.stringify({ status, seq }), { qos: 1 })
  }

  async typing (convId: string, typing: boolean): Promise<void> {
    await this.#client.publishAsync(`conv/${convId}/typing`, JSON.stringify({ typing }), { qos: 0 })
  }

  presence (state: 'active' | 'away'): void {
    this.#client.publish(`user/${this.#userId}/presence`, JSON.stringify({ state }), { qos: 0 }, () => {})
  }

  follow ({ convIds, userIds }: Follow): Promise<void> {
    // One SUBSCRIBE per filter: a SUBACK 0x80 for one (a conversation left, a user who
    // hides their presence) must not fail the others.
    const subscribing: Array<Promise<unknown>> = []
    const subscribe = (filter: string): void => {
      subscribing.push(this.#client.subscribeAsync(filter, { qos: 0 }).catch(() => {}))
    }
    for (const c of convIds) {
      if (this.#typing.has(c)) continue
      this.#typing.add(c)
      subscribe(`conv/${c}/typing`)
    }
    for (const u of userIds) {
      if (this.#presence.has(u) || u === this.#userId) continue
      this.#presence.add(u)
      subscribe(`presence/${u}`)
    }
    return Promise.all(subscribing).then(() => {})
  }

  async close (): Promise<void> {
    this.#closed = true
    await this.#client.endAsync(true).catch(() => {})
  }
}

function parse (topic: string, payload: Uint8Array, me: string): Inbound | null {
  let msg: unknown
  try {
    msg = JSON.parse(decoder.decode(payload))
  } catch {
    return null
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return null
  const parts = topic.split('/')
  if (parts[0] === 'user' && parts[1] === me && parts[2] === 'inbox') {
    return typeof (msg as { t?: unknown }).t === 'string' ? msg as Inbound : null
  }
  // conv/<c>/typing carries no conversation id in its payload: the topic names it
  if (parts[0] === 'conv' && parts[2] === 'typing' && parts[1] !== undefined) return { ...msg, t: 'typing', conv_id: parts[1] }
  if (parts[0] === 'presence') return { ...msg, t: 'presence' }
  return null
}
