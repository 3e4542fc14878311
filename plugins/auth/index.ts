// JWT verification at CONNECT (DESIGN.md §2): username = sub, password = token,
// clientId = <sub>:<deviceId>. Anonymous clients only under THREADLINE_OPEN_TOPICS=anonymous.
import type { Client } from 'aedes'
import type { ThreadlinePlugin, PluginContext, ConnectInfo } from '../../broker/plugin.js'
import { ConnectRefusal } from '../../broker/plugin.js'
import { identityOf, setIdentity, type Identity, type Role } from '../../broker/identity.js'
import { Deadlines } from '../../broker/deadlines.js'
import { markGone, onConnectionClosed } from '../../broker/lifecycle.js'
import { isId } from '../../schemas/ids.js'
import { TOKENS_SERVICE, TokenError, type TokenService } from '../../core/tokens.js'
import { upsertTokenUser } from '../../core/users.js'

/** JWT `exp` is whole seconds: one expiry slot per second loses no precision */
const EXPIRY_RESOLUTION_MS = 1000

function refuseAnonymous (ctx: PluginContext, info: ConnectInfo): void {
  if (ctx.config.openTopics !== 'anonymous') {
    throw new ConnectRefusal(5, 'a token is required: username = user id, password = token')
  }
  // clientIds of the form <user>:<device> belong to token holders: an anonymous client
  // must never take over a user's session
  if (info.clientId.includes(':')) throw new ConnectRefusal(2, 'clientIds with ":" are reserved for token holders')
}

function verifyToken (tokens: TokenService, info: ConnectInfo): Identity {
  let claims
  try {
    claims = tokens.verify((info.password as Buffer).toString('utf8'))
  } catch (err) {
    if (err instanceof TokenError) throw new ConnectRefusal(4, err.message)
    throw err
  }
  if (info.username !== claims.sub) throw new ConnectRefusal(4, 'username must be the token\'s sub')
  const colon = info.clientId.indexOf(':')
  const owner = info.clientId.slice(0, colon)
  const deviceId = info.clientId.slice(colon + 1)
  if (colon < 0 || owner !== claims.sub || !isId(deviceId)) {
    throw new ConnectRefusal(5, 'clientId must be <sub>:<deviceId>, deviceId 1–64 chars of [A-Za-z0-9_.-]')
  }
  return new TokenIdentity(claims.sub, info.clientId, claims.role, claims.name, claims.exp)
}

/**
 * A session keeps its identity for as long as it is connected: what can be derived is
 * derived when asked (the clientId is kept by the client anyway; `exp` in seconds is a
 * small integer where the expiry in ms would be a boxed double).
 */
class TokenIdentity implements Identity {
  constructor (readonly userId: string, private readonly clientId: string, readonly role: Role, readonly name: string | null, private readonly exp: number) {}

  get deviceId (): string { return this.clientId.slice(this.clientId.indexOf(':') + 1) }

  get expiresAt (): number { return this.exp * 1000 }
}

// set while the session holds its user's membership entry and an expiry
const HELD = Symbol('threadline.authHeld')
type Held = Client & { [HELD]?: boolean }

export const authPlugin: ThreadlinePlugin = {
  name: 'auth',
  hooks: (ctx) => {
    const tokens = ctx.services.get(TOKENS_SERVICE)
    const log = ctx.log.child({ plugin: 'auth' })
    // A live session whose token expires is disconnected (DESIGN.md §2). One timer for
    // the node's sessions, not one per session (broker/deadlines.ts).
    const expiries = new Deadlines<Client>(EXPIRY_RESOLUTION_MS, (client) => {
      markGone(client, 'token_expired')
      client.close()
    })
    onConnectionClosed(ctx.broker, (client) => {
      if ((client as Held)[HELD] !== true) return
      ;(client as Held)[HELD] = false
      const identity = identityOf(client) as Identity
      expiries.delete(client, expiries.slotOf(identity.expiresAt))
      ctx.membership.release(identity.userId)
    })
    return {
      async authenticate (client, info) {
        // [MQTT-3.1.3-8]: an empty clientId needs clean=true; answered with CONNACK 2
        if (info.clientId === '' && !info.clean) throw new ConnectRefusal(2, 'an empty clientId needs clean session')
        if (info.password === undefined) {
          if (info.username !== undefined) throw new ConnectRefusal(4, 'a password (the token) is required with a username')
          refuseAnonymous(ctx, info)
          return
        }
        const identity = verifyToken(tokens, info)
        await upsertTokenUser(ctx.store, identity.userId, identity.name)
        await ctx.membership.retain(identity.userId)
        setIdentity(client, identity)
        // released exactly once: now if the connection is gone already, else when it closes
        if (client.closed || client.conn.destroyed) {
          ctx.membership.release(identity.userId)
        } else {
          ;(client as Held)[HELD] = true
          expiries.add(client, identity.expiresAt)
        }
        log.debug({ clientId: client.id, userId: identity.userId }, 'authenticated')
      }
    }
  }
}
