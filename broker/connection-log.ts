// One info line when an MQTT client's session is up and one when it goes, with why and
// after how long: what an operator greps for when a device says it keeps dropping. Never
// the token (it is the CONNECT password, which nothing here reads).
import type { Aedes, Client } from 'aedes'
import type { Logger } from './logger.js'
import { trackLifecycle } from './lifecycle.js'
import { clientAddressOf } from './client-address.js'

// Aedes keeps 1.5 × the CONNECT's keepalive in ms (+1), -1 when there is none
type ClientWithKeepalive = Client & { _keepaliveInterval?: number }
const keepaliveOf = (client: Client): number => {
  const ms = (client as ClientWithKeepalive)._keepaliveInterval ?? -1
  return ms > 0 ? Math.round((ms - 1) / 1500) : 0
}

const SINCE = Symbol('threadline.connectedSince')
type Timed = Client & { [SINCE]?: number }

export function logConnections (broker: Aedes, log: Logger): void {
  trackLifecycle(broker, {
    ready (client) {
      // below info nothing is written: nothing to keep either (the address lookup caches
      // the peer's address on the socket for as long as it is open)
      if (!log.isLevelEnabled('info')) return
      ;(client as Timed)[SINCE] = performance.now()
      log.info({ clientId: client.id, ip: clientAddressOf(client), clean: client.clean, keepalive: keepaliveOf(client) }, 'client connected')
    },
    gone (client, reason) {
      if (!log.isLevelEnabled('info')) return
      const start = (client as Timed)[SINCE]
      const ms = start === undefined ? undefined : Math.round(performance.now() - start)
      log.info({ clientId: client.id, reason, ms }, 'client disconnected')
    }
  })
}
