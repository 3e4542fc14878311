// What a node tells whoever watches it (plugins/metrics, tests): one typed event per
// thing worth counting. One hub per node, not a process-global channel, so two nodes in
// one process (the tests' clusters) never count each other's traffic. Emitting with
// nobody listening costs one array length check: the send path emits on every send.
import type { ErrorCode } from '../schemas/index.js'
import { serviceKey } from './services.js'

export type Transport = 'mqtt' | 'http'

export interface TelemetryEvents {
  /**
   * One send answered: `ok` (stored), `duplicate` (a retry of a stored send) or the
   * error code it was refused with. `ms`: from arrival to the answer (the PUBACK over MQTT).
   */
  send: { transport: Transport, result: 'ok' | 'duplicate' | ErrorCode, ms: number }
  /** One group commit of the send path: how many sends it held and how long its transaction took. */
  commit: { size: number, ms: number }
  /** A limit refused something: which limit (`send`, `typing`, `connect_ip`, `http`, …). */
  limited: { limit: string }
  /** A connection was refused before it had a session (`max_connections`, `connect_timeout`, …). */
  connectionRefused: { reason: string }
  /** Events dropped from an offline device's queue because it passed its cap. */
  offlineDropped: { count: number }
  /** Receipt updates that were merged into one store write by the coalescer. */
  receiptsCoalesced: { count: number }
  /** One push attempt's end. */
  push: { provider: 'apns' | 'fcm', result: 'sent' | 'unregistered' | 'failed' }
  /**
   * A store query or transaction failed: the store unreachable, a value it refused
   * (SQLSTATE 22, 23), a conflict it aborted (40: deadlock, serialization; retried), a fault.
   */
  storeError: { kind: 'unavailable' | 'refused' | 'conflict' | 'fault' }
}

type Listener<K extends keyof TelemetryEvents> = (event: TelemetryEvents[K]) => void
type Listeners = { [K in keyof TelemetryEvents]: Array<Listener<K>> }

export class Telemetry {
  readonly #listeners: Listeners = {
    send: [],
    commit: [],
    limited: [],
    connectionRefused: [],
    offlineDropped: [],
    receiptsCoalesced: [],
    push: [],
    storeError: []
  }

  /** Listens for one kind of event; answers how to stop. A listener must not throw. */
  on<K extends keyof TelemetryEvents> (kind: K, listener: Listener<K>): () => void {
    const list = this.#listeners[kind] as Array<Listener<K>>
    list.push(listener)
    return () => {
      const i = list.indexOf(listener)
      if (i >= 0) list.splice(i, 1)
    }
  }

  /** Whether anyone listens: lets a caller skip building an event nobody reads. */
  watched (kind: keyof TelemetryEvents): boolean {
    return this.#listeners[kind].length > 0
  }

  emit<K extends keyof TelemetryEvents> (kind: K, event: TelemetryEvents[K]): void {
    const list = this.#listeners[kind] as Array<Listener<K>>
    for (let i = 0; i < list.length; i++) (list[i] as Listener<K>)(event)
  }
}

/** The node's telemetry hub: every part emits into it, plugins/metrics listens. */
export const TELEMETRY = serviceKey<Telemetry>('telemetry')
