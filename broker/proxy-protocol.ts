// PROXY protocol v1 and v2 (HAProxy's `send-proxy` / `send-proxy-v2`, spec:
// haproxy.org/download/2.8/doc/proxy-protocol.txt): the header a TCP proxy writes before
// the client's bytes, naming the client's address. Read only from trusted peers
// (THREADLINE_TRUST_PROXY), and required of them: a trusted peer that sent none would be
// passing a client's bytes on as they are, and a client's own header would be believed.
// Anyone else's first bytes go to the MQTT parser as they are, where a PROXY header is no
// CONNECT and closes the connection.
//
// Written here rather than taken from aedes-protocol-decoder 2.2.0: that one expects the
// whole header in the first chunk (it throws on one split across TCP segments) and prints
// some IPv6 addresses wrongly (2001:db8:0:0:1:0:0:1 as "2001:db8::1::1").
import net from 'node:net'
import type { Socket } from 'node:net'

const V1_PREFIX = Buffer.from('PROXY ')
const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
/** [spec 2.1] a v1 line is at most 107 bytes, CRLF included */
const V1_MAX_BYTES = 107
/** v2 addresses take at most 216 bytes; the rest are TLVs (ALPN, TLS details, unique id), which we skip */
const V2_MAX_BYTES = 16 + 2048

export class ProxyHeaderError extends Error {
  constructor (message: string) {
    super(`PROXY header: ${message}`)
    this.name = 'ProxyHeaderError'
  }
}

/** A trusted peer's connection began with something other than a PROXY header. */
export class ProxyHeaderMissing extends ProxyHeaderError {
  constructor () {
    super('missing: the connection does not start with one')
    this.name = 'ProxyHeaderMissing'
  }
}

/**
 * What a complete header says: the client's address (null for a proxy's own connection —
 * v1 UNKNOWN, v2 LOCAL or a family other than TCP over IP — where the peer's counts) and
 * how many bytes it took.
 */
export interface ProxyHeader { address: string | null, length: number }

/**
 * The header at the start of `buf`: `'none'` when `buf` starts with no PROXY signature,
 * `null` while more bytes are needed. Throws ProxyHeaderError on a malformed header.
 */
export function parseProxyHeader (buf: Buffer): ProxyHeader | 'none' | null {
  if (startsLike(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? null : parseV1(buf)
  if (startsLike(buf, V2_SIGNATURE)) return buf.length < 16 ? null : parseV2(buf)
  return 'none'
}

function startsLike (buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length)
  return n > 0 && buf.subarray(0, n).equals(prefix.subarray(0, n))
}

function parseV1 (buf: Buffer): ProxyHeader | null {
  const end = buf.indexOf('\r\n')
  if (end < 0) {
    if (buf.length >= V1_MAX_BYTES) throw new ProxyHeaderError('v1 line longer than 107 bytes')
    return null
  }
  const length = end + 2
  if (length > V1_MAX_BYTES) throw new ProxyHeaderError('v1 line longer than 107 bytes')
  const [, family, source, , sourcePort, destinationPort, ...rest] = buf.toString('latin1', 0, end).split(' ')
  if (family === 'UNKNOWN') return { address: null, length }
  const want = family === 'TCP4' ? 4 : family === 'TCP6' ? 6 : 0
  if (want === 0 || rest.length > 0 || source === undefined || net.isIP(source) !== want || !isPort(sourcePort) || !isPort(destinationPort)) {
    throw new ProxyHeaderError('malformed v1 line')
  }
  return { address: source, length }
}

const isPort = (s: string | undefined): boolean => s !== undefined && /^\d{1,5}$/.test(s) && Number(s) <= 65535

function parseV2 (buf: Buffer): ProxyHeader | null {
  const versionCommand = buf[12] as number
  const family = buf[13] as number
  const length = 16 + buf.readUInt16BE(14)
  if (versionCommand >> 4 !== 2) throw new ProxyHeaderError(`v2 version ${versionCommand >> 4}`)
  if (length > V2_MAX_BYTES) throw new ProxyHeaderError(`v2 header of ${length} bytes`)
  if (buf.length < length) return null
  const command = versionCommand & 0x0f
  if (command === 0) return { address: null, length } // LOCAL: the proxy's own health check
  if (command !== 1) throw new ProxyHeaderError(`v2 command ${command}`)
  // the high nibble is the address family, the low one the transport (1 = stream)
  if (family === 0x11) {
    if (length < 16 + 12) throw new ProxyHeaderError('v2 IPv4 addresses cut short')
    return { address: Array.from(buf.subarray(16, 20)).join('.'), length }
  }
  if (family === 0x21) {
    if (length < 16 + 36) throw new ProxyHeaderError('v2 IPv6 addresses cut short')
    return { address: ipv6(buf.subarray(16, 32)), length }
  }
  return { address: null, length }
}

/** 16 bytes as the shortest IPv6 text (RFC 5952), the way sockets report addresses. */
function ipv6 (bytes: Buffer): string {
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16))
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1)
}

/**
 * Reads the PROXY header a trusted peer must send before its MQTT bytes and puts back what
 * follows it, for Aedes to read. Resolves the client's address, or null when the peer
 * spoke for itself (v1 UNKNOWN, v2 LOCAL). Rejects (the socket destroyed) with
 * ProxyHeaderMissing when the first bytes are no PROXY header, and with ProxyHeaderError on
 * a malformed header or when nothing complete came within `timeoutMs`.
 */
export function readProxyHeader (socket: Socket, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => fail(new ProxyHeaderError(`none within ${timeoutMs} ms`)), timeoutMs)
    const finish = (): void => {
      clearTimeout(timer)
      socket.off('readable', onReadable)
      socket.off('end', onEnd)
      socket.off('close', onEnd)
    }
    const fail = (err: Error): void => {
      finish()
      socket.destroy()
      reject(err)
    }
    const onEnd = (): void => fail(new ProxyHeaderError('connection ended before the header did'))
    const onReadable = (): void => {
      let chunk: Buffer | null
      while ((chunk = socket.read() as Buffer | null) !== null) buf = Buffer.concat([buf, chunk])
      let header: ProxyHeader | 'none' | null
      try {
        header = parseProxyHeader(buf)
      } catch (err) {
        return fail(err as Error)
      }
      if (header === null) return
      if (header === 'none') return fail(new ProxyHeaderMissing())
      finish()
      const rest = buf.subarray(header.length)
      if (rest.length > 0) socket.unshift(rest)
      resolve(header.address)
    }
    socket.on('readable', onReadable)
    socket.once('end', onEnd)
    socket.once('close', onEnd)
  })
}
