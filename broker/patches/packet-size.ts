// Upstream behaviour worked around: Aedes feeds each connection's bytes to an mqtt-packet
// Parser (`client._parser`, aedes/lib/client.js) that appends them to its buffer list until
// the whole packet announced by the fixed header has arrived, and only then runs any hook.
// A CONNECT announcing 200 MiB therefore holds up to 200 MiB before authentication, and
// neither Aedes nor mqtt-packet 9 (for MQTT 3.1.1) has a maximum packet size.
//
// The fixed header's remaining length is known after `_parseLength`, before a byte of the
// body is kept: checked there, the connection closes while only the first read is buffered.
// test/broker/patches.test.ts fails if mqtt-packet or Aedes change these internals.

/** The parts of mqtt-packet's Parser the check relies on. */
interface LengthParser {
  packet: { cmd?: string, length: number }
  _list: { length: number, consume(bytes: number): unknown }
  _parseLength(): boolean
  _emitError(err: Error): unknown
  /** the Aedes client the parser reads for (aedes/lib/client.js sets it) */
  client?: ParsingClient
}

/** The parts of an Aedes client the check relies on. */
interface ParsingClient {
  _parser: LengthParser
  /** set once the authenticate hooks accepted the CONNECT (aedes/lib/handlers/connect.js) */
  _authorized?: boolean
}

export interface PacketLimits {
  /** largest remaining length before the CONNECT is accepted (the CONNECT itself included) */
  beforeConnectBytes: number
  /** largest remaining length once the CONNECT is accepted */
  packetBytes: number
}

export class PacketTooLarge extends Error {
  constructor (readonly announced: number, readonly limit: number, cmd: string | undefined) {
    super(`${cmd ?? 'packet'} of ${announced} bytes is over the limit of ${limit} bytes`)
    this.name = 'PacketTooLarge'
  }
}

/** one check per limits object, shared by every parser given it: no closure per connection */
const checks = new WeakMap<PacketLimits, (this: LengthParser) => boolean>()

/**
 * Closes a connection as soon as a fixed header announces a packet over the limit. Pass
 * the same `limits` object for every connection of a listener: the check made for it is
 * shared by them all.
 */
export function limitPacketSize (client: unknown, limits: PacketLimits): void {
  const c = client as ParsingClient
  const parser = c._parser
  if (typeof parser?._parseLength !== 'function' || typeof parser._emitError !== 'function' || parser._list === undefined || parser.client !== c) {
    throw new Error('mqtt-packet Parser internals changed: broker/patches/packet-size.ts needs an update')
  }
  let check = checks.get(limits)
  if (check === undefined) checks.set(limits, check = checkFor(limits, parser._parseLength))
  parser._parseLength = check
}

function checkFor (limits: PacketLimits, parseLength: () => boolean): (this: LengthParser) => boolean {
  return function checkedParseLength (this: LengthParser): boolean {
    if (!parseLength.call(this)) return false
    const limit = this.client?._authorized === true ? limits.packetBytes : limits.beforeConnectBytes
    if (this.packet.length <= limit) return true
    // drop what was read so far: the client closes the connection on the parser's error
    this._list.consume(this._list.length)
    this._emitError(new PacketTooLarge(this.packet.length, limit, this.packet.cmd))
    return false
  }
}
