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

export function logConnections (broker: Aedes, log: Logger): void {
  const since = new WeakMap<Client, number>()
  trackLifecycle(broker, {
    ready (client) {
      since.set(client, performance.now())
      log.info({ clientId: client.id, ip: clientAddressOf(client), clean: client.clean, keepalive: keepaliveOf(client) }, 'client connected')
    },
    gone (client, reason) {
      const start = since.get(client)
      const ms = start === undefined ? undefined : Math.round(performance.now() - start)
      log.info({ clientId: client.id, reason, ms }, 'client disconnected')
    }
  })
}
