// The address a client connects from, for limits keyed by IP and for logs. One place, so
// that trusting a proxy's word about the real address (PROXY protocol, X-Forwarded-For)
// changes every user of it at once.
import net from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Client } from 'aedes'

const ADDRESS = Symbol('threadline.clientAddress')

type Connection = object & { remoteAddress?: string, [ADDRESS]?: string }

/** Records where the client on `conn` really is (a listener calls it before Aedes sees the connection). */
export function setConnectionAddress (conn: object, address: string): void {
  (conn as Connection)[ADDRESS] = address
}

export function clientAddressOf (client: Client): string {
  const conn = (client as Client & { conn?: Connection }).conn
  return conn?.[ADDRESS] ?? conn?.remoteAddress ?? 'unknown'
}

/**
 * THREADLINE_TRUST_PROXY: the peers whose word on a client's address is taken. Everyone
 * else's PROXY header or X-Forwarded-For is not read, so nobody can claim another address.
 */
export class ProxyTrust {
  readonly #list = new net.BlockList()
  /** whether any peer is trusted at all (nothing to look for otherwise) */
  readonly any: boolean

  constructor (entries: readonly string[]) {
    for (const entry of entries) {
      const [address = '', bits] = entry.split('/')
      const type = net.isIP(address) === 6 ? 'ipv6' : 'ipv4'
      if (bits === undefined) this.#list.addAddress(address, type)
      else this.#list.addSubnet(address, Number(bits), type)
    }
    this.any = entries.length > 0
  }

  /** IPv4-mapped IPv6 addresses (`::ffff:10.0.0.5`) match IPv4 entries. */
  trusts (address: string | undefined): boolean {
    if (!this.any || address === undefined) return false
    const family = net.isIP(address)
    return family !== 0 && this.#list.check(address, family === 6 ? 'ipv6' : 'ipv4')
  }

  /**
   * The client's address as X-Forwarded-For tells it through trusted proxies: from the
   * peer, each hop to the left is believed while the one that named it is trusted — the
   * walk Fastify's `trustProxy` does for REST, so both sides agree on who a client is.
   */
  forwardedAddress (req: IncomingMessage): string | undefined {
    let address = req.socket.remoteAddress
    const header = req.headers['x-forwarded-for']
    if (!this.trusts(address) || typeof header !== 'string') return address
    const hops = header.split(',').map(h => h.trim()).filter(h => h !== '')
    for (let i = hops.length - 1; i >= 0; i--) {
      address = hops[i] as string
      if (!this.trusts(address)) break
    }
    return address
  }
}
