// MQTT 3.1.1 packets written by hand over raw sockets, for clients that behave as no
// library would: announcing huge packets, or connecting and then never reading again.
import net from 'node:net'
import { once } from 'node:events'

/** Rejects with `message` when `promise` has not settled within `ms`. */
export async function within<T> (promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} (after ${ms} ms)`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The fixed header's remaining length (MQTT-2.2.3: 1–4 bytes, 7 bits each). */
export function remainingLength (n: number): Buffer {
  const bytes: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    bytes.push(byte)
  } while (n > 0)
  return Buffer.from(bytes)
}

const str = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8')
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

const packet = (first: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([first]), remainingLength(body.length), body])

export function connectPacket (opts: { clientId: string, clean: boolean, username?: string, password?: string, keepaliveS?: number }): Buffer {
  const flags = (opts.username !== undefined ? 0x80 : 0) | (opts.password !== undefined ? 0x40 : 0) | (opts.clean ? 0x02 : 0)
  const keepalive = Buffer.alloc(2)
  // 0 ("never") is refused by the node's keepalive bound (THREADLINE_KEEPALIVE_MAX_S)
  keepalive.writeUInt16BE(opts.keepaliveS ?? 60)
  return packet(0x10, Buffer.concat([
    str('MQTT'), Buffer.from([4, flags]), keepalive, str(opts.clientId),
    ...(opts.username !== undefined ? [str(opts.username)] : []),
    ...(opts.password !== undefined ? [str(opts.password)] : [])
  ]))
}

export function subscribePacket (messageId: number, filter: string, qos: 0 | 1): Buffer {
  const id = Buffer.alloc(2)
  id.writeUInt16BE(messageId)
  return packet(0x82, Buffer.concat([id, str(filter), Buffer.from([qos])]))
}

/** Reads from `socket` until `n` bytes arrived (what CONNACK and SUBACK need), then stops listening. */
export function readBytes (socket: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0)
    const done = (): void => {
      socket.off('data', onData)
      socket.off('close', onClose)
    }
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk])
      if (got.length < n) return
      done()
      resolve(got)
    }
    const onClose = (): void => {
      done()
      reject(new Error(`closed after ${got.length} of ${n} bytes`))
    }
    socket.on('data', onData)
    socket.on('close', onClose)
  })
}

export async function openSocket (port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  return socket
}

/**
 * Splits what arrives on `socket` into MQTT packets and calls `onPacket` with each one's
 * first byte (type and flags) and body; resolves nothing, it just keeps framing.
 */
export function framePackets (socket: net.Socket, onPacket: (first: number, body: Buffer) => void): void {
  let buf = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      let length = 0
      let multiplier = 1
      let i = 1
      for (; i < buf.length && i <= 4; i++) {
        const byte = buf[i] as number
        length += (byte & 0x7f) * multiplier
        multiplier *= 128
        if ((byte & 0x80) === 0) break
      }
      if (i >= buf.length || buf.length < i + 1 + length) return
      onPacket(buf[0] as number, buf.subarray(i + 1, i + 1 + length))
      buf = buf.subarray(i + 1 + length)
    }
  })
}
