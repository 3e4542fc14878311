// Keeps the client connected: opens a transport, waits for it to fail, waits a backoff
// delay (full jitter, reset by every success), and opens the next. With `auto`, MQTT comes
// first; after `afterFailures` MQTT attempts fail in a row it falls back to long-poll, and
// from there tries MQTT every `probeMs`, switching back as soon as one connects. A refused
// token is renewed once through refreshToken() before the refusal counts as final.
import type { Auth } from './auth.js'
import { backoffDelay } from './backoff.js'
import type { HttpApi } from './http.js'
import { LongPollTransport } from './longpoll-transport.js'
import { MqttTransport } from './mqtt-transport.js'
import type { Timers, TimerHandle } from './timers.js'
import { AuthRefused, type Follow, type Inbound, type Transport, type TransportSink } from './transport.js'
import type { BackoffOptions, ClientState, TransportKind, TransportOption } from './types.js'

export interface ConnectionOptions {
  option: TransportOption
  /** the MQTT URL: mqttUrl, or ws(s)://…/mqtt derived from the HTTP base */
  mqttUrl: string
  deviceId: string
  auth: Auth
  http: HttpApi
  timers: Timers
  backoff: BackoffOptions
  afterFailures: number
  probeMs: number
  keepaliveS: number
  connectTimeoutMs: number
  pollTimeoutS: number
  /** what the next transport should follow (typing, presence) */
  follow (): Follow
  envelope (envelope: Inbound): void
  state (state: ClientState, transport: TransportKind | null): void
  /** a transport is up: resend, resubscribe, catch up */
  up (transport: Transport): void
  /** long-poll replaced its queue: catch up */
  reopened (): void
  /** no connection is possible: the token is refused for good */
  fatal (err: Error): void
}

interface Live {
  transport: Transport
  /** resolves when the transport failed, or was replaced or closed */
  down: Promise<void>
  end (): void
}

export class Connection {
  readonly #o: ConnectionOptions
  #live: Live | null = null
  #closed = false
  #probe: TimerHandle | undefined
  #started: Promise<void> | null = null
  /** ends connection attempts still under way when the client closes */
  readonly #attempts = new AbortController()

  constructor (options: ConnectionOptions) {
    this.#o = options
  }

  get current (): Transport | null {
    return this.#live?.transport ?? null
  }

  /** Starts connecting; resolves the first time a transport is up, rejects on a final refusal. */
  start (): Promise<void> {
    this.#started ??= new Promise((resolve, reject) => {
      this.#run(resolve).then(() => reject(new Error('the client was closed before it connected')), (err: Error) => {
        if (this.#closed) return resolve()
        this.#o.state('offline', null)
        reject(err)
        this.#o.fatal(err)
      })
    })
    return this.#started
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#attempts.abort()
    this.#o.timers.clear(this.#probe)
    const live = this.#live
    this.#live = null
    live?.end()
    await live?.transport.close()
  }

  async #run (online: () => void): Promise<void> {
    const o = this.#o
    let attempt = 0
    let mqttFailures = 0
    let refreshed = false
    while (!this.#closed) {
      const longpoll = o.option === 'longpoll' || (o.option === 'auto' && mqttFailures >= o.afterFailures)
      o.state('connecting', null)
      const token = o.auth.token
      let live: Live
      try {
        live = await this.#open(longpoll ? 'longpoll' : 'mqtt')
      } catch (err) {
        if (this.#closed) return
        if (err instanceof AuthRefused) {
          // the first refusal may be an expired token: renew it once and try at once (a
          // 401 comes after HttpApi already renewed it once: it is final)
          if (refreshed || !o.auth.canRefresh || err.code === 401) throw err
          refreshed = true
          await o.auth.refresh(token)
          continue
        }
        // CONNACK 3 (the store is down) is the server answering: the path works, so it is
        // retried like MQTT.js's reconnectOnConnackError, and is no reason to fall back
        if (!longpoll && (err as { code?: unknown }).code !== 3) mqttFailures++
        o.state('offline', null)
        await o.timers.sleep(backoffDelay(attempt++, o.backoff))
        continue
      }
      if (this.#closed) {
        await live.transport.close()
        return
      }
      refreshed = false
      attempt = 0
      if (!longpoll) mqttFailures = 0
      this.#adopt(live)
      online()
      // wait for the transport in use to fail; a probe may have replaced it meanwhile
      for (let current = this.#live; current !== null; current = this.#live) {
        await current.down
        if (this.#closed || this.#live === current) break
      }
      if (this.#closed) return
      this.#live = null
      this.#o.timers.clear(this.#probe)
      o.state('offline', null)
      await o.timers.sleep(backoffDelay(attempt++, o.backoff))
    }
  }

  async #open (kind: TransportKind): Promise<Live> {
    const o = this.#o
    let end = (): void => {}
    const down = new Promise<void>(resolve => { end = resolve })
    let transport: Transport | undefined
    const sink: TransportSink = {
      envelope: (e) => { if (!this.#closed) o.envelope(e) },
      down: () => end(),
      reopened: () => { if (!this.#closed && transport !== undefined && this.#live?.transport === transport) o.reopened() }
    }
    if (kind === 'mqtt') {
      transport = await MqttTransport.open({
        url: o.mqttUrl,
        userId: o.auth.userId,
        deviceId: o.deviceId,
        token: o.auth.token,
        keepaliveS: o.keepaliveS,
        connectTimeoutMs: o.connectTimeoutMs,
        follow: o.follow(),
        signal: this.#attempts.signal
      }, sink)
    } else {
      transport = await LongPollTransport.open(o.http, o.timers, {
        deviceId: o.deviceId,
        pollTimeoutS: o.pollTimeoutS,
        follow: o.follow(),
        retryDelay: attempt => backoffDelay(attempt, o.backoff),
        signal: this.#attempts.signal
      }, sink)
    }
    return { transport, down, end }
  }

  #adopt (live: Live): void {
    this.#live = live
    this.#o.state('online', live.transport.kind)
    this.#o.up(live.transport)
    if (live.transport.kind === 'longpoll' && this.#o.option === 'auto') this.#armProbe()
  }

  #armProbe (): void {
    this.#o.timers.clear(this.#probe)
    this.#probe = this.#o.timers.set(() => { void this.#tryMqtt() }, this.#o.probeMs)
  }

  /** On long-poll: connect MQTT beside it; once it is up, it takes over and the queue ends. */
  async #tryMqtt (): Promise<void> {
    let live: Live
    try {
      live = await this.#open('mqtt')
    } catch {
      if (!this.#closed && this.#live?.transport.kind === 'longpoll') this.#armProbe()
      return
    }
    const old = this.#live
    if (this.#closed || old === null || old.transport.kind !== 'longpoll') {
      await live.transport.close()
      return
    }
    // MQTT is subscribed before the queue ends, so every event reaches one or the other
    // (both, at worst: the streams drop the second copy by seq)
    this.#adopt(live)
    old.end()
    await old.transport.close()
  }
}
