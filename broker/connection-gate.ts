// What a CONNECT must pass before any plugin (and so before the store) is asked about it:
// a free place among THREADLINE_MAX_CONNECTIONS (else CONNACK 3, server unavailable) and a
// keepalive within THREADLINE_KEEPALIVE_MAX_S (else CONNACK 2). Refusing here costs no
// query, which is what keeps a reconnect storm past the cap from reaching PostgreSQL.
import type { Aedes, Client } from 'aedes'
import type { Telemetry } from '../core/telemetry.js'
import { clientAddressOf } from './client-address.js'
import type { Logger } from './logger.js'
import { onConnectionClosed } from './lifecycle.js'

export interface GateOptions {
  /** THREADLINE_MAX_CONNECTIONS */
  maxConnections: number
  /** THREADLINE_KEEPALIVE_MAX_S; 0: any keepalive */
  keepaliveMaxS: number
}

type Refusal = Error & { returnCode: 2 | 3 }

const COUNTED = Symbol('threadline.counted')
type Counted = Client & { [COUNTED]?: boolean }

/** The message of Aedes' own connect timer (lib/client.js); test/connections/connect-timeout checks it still is. */
const CONNECT_TIMEOUT_MESSAGE = 'connect did not arrive in time'

export class ConnectionGate {
  #open = 0
  readonly #keepalives = new WeakMap<Client, number>()

  constructor (private readonly opts: GateOptions, private readonly telemetry: Telemetry, private readonly log: Logger) {}

  /** MQTT connections past their CONNECT's check and not yet closed (authenticating ones included). */
  get open (): number { return this.#open }

  /**
   * Goes in front of the hooks the plugin registry installed (call it after
   * registry.start): preConnect to see the keepalive, authenticate to refuse.
   */
  install (broker: Aedes): void {
    onConnectionClosed(broker, (client) => {
      if ((client as Counted)[COUNTED] !== true) return
      ;(client as Counted)[COUNTED] = false
      this.#open--
    })
    const preConnect = broker.preConnect
    broker.preConnect = (client, packet, callback) => {
      this.#keepalives.set(client, packet.keepalive ?? 0)
      preConnect(client, packet, callback)
    }
    const authenticate = broker.authenticate
    broker.authenticate = (client, username, password, callback) => {
      const refusal = this.#check(client)
      if (refusal !== null) return callback(refusal, false)
      // counted until the connection closes
      if (!client.conn.destroyed) {
        this.#open++
        ;(client as Counted)[COUNTED] = true
      }
      authenticate(client, username, password, callback)
    }
    broker.on('connectionError', (_client, err) => {
      if (err.message === CONNECT_TIMEOUT_MESSAGE) this.telemetry.emit('connectionRefused', { reason: 'connect_timeout' })
    })
  }

  #check (client: Client): Refusal | null {
    const keepalive = this.#keepalives.get(client) ?? 0
    this.#keepalives.delete(client) // read once: no entry for the life of the session
    const max = this.opts.keepaliveMaxS
    // Like Mosquitto's max_keepalive and HiveMQ's max-keep-alive for MQTT 3.1.1 clients
    // (which, unlike MQTT 5, can't be told another keepalive): refused, with the code
    // Mosquitto uses. 0 would mean "never check", so a dead connection would hold its
    // place and its files for good.
    if (max > 0 && (keepalive === 0 || keepalive > max)) {
      return this.#refuse(client, 2, 'keepalive', `keepalive must be 1–${max} s, got ${keepalive}`, { keepalive, keepaliveMax: max })
    }
    if (this.#open >= this.opts.maxConnections) {
      return this.#refuse(client, 3, 'max_connections', 'this node is at its connection limit', { max: this.opts.maxConnections })
    }
    return null
  }

  #refuse (client: Client, returnCode: 2 | 3, reason: string, message: string, detail: Record<string, number>): Refusal {
    this.telemetry.emit('connectionRefused', { reason })
    this.log.info({ reason, clientId: client.id, address: clientAddressOf(client), returnCode, ...detail }, 'connection refused')
    return Object.assign(new Error(message), { returnCode })
  }
}
