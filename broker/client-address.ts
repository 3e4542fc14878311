// The address a client connects from, for limits keyed by IP and for logs. One place, so
// that trusting a proxy's word about the real address (PROXY protocol, X-Forwarded-For)
// changes every user of it at once.
import type { Client } from 'aedes'

type ClientWithSocket = Client & { conn?: { remoteAddress?: string } }

export function clientAddressOf (client: Client): string {
  return (client as ClientWithSocket).conn?.remoteAddress ?? 'unknown'
}
