// What the connection manager needs from a transport, MQTT or long-poll alike: the client
// above never learns which one carries it, beyond the `transport` it reports.
import type { TransportKind } from './types.js'

/** An envelope as received: an inbox envelope, or a `typing`/`presence` one. */
export type Inbound = { t: string } & Record<string, unknown>

/** The body of a send, as conv/<c>/send and POST …/messages take it. */
export interface SendPayload {
  client_msg_id: string
  type: 'text' | 'reaction' | 'edit' | 'delete'
  text?: string
  reply_to?: number
  target_seq?: number
  emoji?: string | null
}

/** What a transport learns of a send at once: HTTP answers with the seq, MQTT only PUBACKs. */
export interface SendAck { seq: number, ts: string }

export interface TransportSink {
  envelope (envelope: Inbound): void
  /** The transport ended by itself: the manager reconnects. Never called after close(). */
  down (reason: Error): void
  /** Long-poll opened a new queue: what the old one held unread is lost, so catch up. */
  reopened (): void
}

/** Which conversations' typing and which users' presence a transport carries. */
export interface Follow {
  convIds: readonly string[]
  userIds: readonly string[]
}

export interface Transport {
  readonly kind: TransportKind
  /** MQTT: the server kept this device's session, so its offline queue follows */
  readonly resumed: boolean
  send (convId: string, payload: SendPayload): Promise<SendAck | null>
  receipt (convId: string, status: 'delivered' | 'read', seq: number): Promise<void>
  typing (convId: string, typing: boolean): Promise<void>
  presence (state: 'active' | 'away'): void
  /** Resolves once the transport carries what it was asked to follow. */
  follow (follow: Follow): Promise<void>
  close (): Promise<void>
}

/** A connection attempt refused for its credentials (CONNACK 4/5, HTTP 401). */
export class AuthRefused extends Error {
  constructor (message: string, readonly code: number) {
    super(message)
    this.name = 'AuthRefused'
  }
}
