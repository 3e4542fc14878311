// Who is on the other end of an MQTT connection, attached to the Aedes client by auth
// at CONNECT and read by every later hook. A symbol keeps it off Aedes' own fields.
import type { Client } from 'aedes'
import type { Role } from '../core/tokens.js'

export type { Role }

export interface Identity {
  readonly userId: string
  readonly deviceId: string
  readonly role: Role
  readonly name: string | null
  /** token expiry, epoch ms */
  readonly expiresAt: number
}

const IDENTITY = Symbol('threadline.identity')
type WithIdentity = Client & { [IDENTITY]?: Identity }

export function setIdentity (client: Client, identity: Identity): void {
  (client as WithIdentity)[IDENTITY] = identity
}

/** null for anonymous clients (THREADLINE_OPEN_TOPICS=anonymous) and for the broker itself */
export function identityOf (client: Client | null | undefined): Identity | null {
  return client == null ? null : (client as WithIdentity)[IDENTITY] ?? null
}
