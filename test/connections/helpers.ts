// What the connection tests share: a node whose log lines can be read, and the answer a
// CONNECT gets on a raw socket.
import { once } from 'node:events'
import type net from 'node:net'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { startThreadline, type Threadline } from '../../broker/server.js'
import type { ThreadlinePlugin } from '../../broker/plugin.js'
import { testConfig, type StoreKind } from '../helpers/node.js'
import { connectPacket, openSocket, readBytes } from '../helpers/raw-mqtt.js'
import { withTimeout } from '../helpers/wait.js'

interface Teardownable { teardown(fn: () => unknown): void }

export interface LogLine { level: number, msg: string, [key: string]: unknown }

/** A node on loopback port 0 that logs at info into `lines`. */
export async function startLoggedNode (t: Teardownable, env: Record<string, string>, opts: { store?: StoreKind, plugins?: ReadonlyArray<ThreadlinePlugin<unknown>> } = {}): Promise<{ node: Threadline, lines: LogLine[] }> {
  const lines: LogLine[] = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine)
      done()
    }
  })
  const config = await testConfig(t, { store: opts.store, env, plugins: opts.plugins })
  const node = await startThreadline(config, pino({ level: 'info', base: { service: 'threadline' } }, sink), { plugins: opts.plugins })
  t.teardown(() => node.close())
  return { node, lines }
}

/** The CONNACK return code of a CONNECT sent on a fresh socket, and whether the server then closed it. */
export async function connackOf (t: Teardownable, port: number, connect: Parameters<typeof connectPacket>[0]): Promise<{ returnCode: number, socket: net.Socket, closed: Promise<unknown> }> {
  const socket = await openSocket(port)
  t.teardown(() => socket.destroy())
  const closed = once(socket, 'close')
  socket.write(connectPacket(connect))
  const connack = await withTimeout(readBytes(socket, 4), `CONNACK for ${connect.clientId}`)
  return { returnCode: connack[3] as number, socket, closed }
}
