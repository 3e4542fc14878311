// A bare Aedes (none of Threadline's plugins, hooks or patches) on a TCP port, for the tests
// that pin the upstream behaviour broker/patches/ works around with real MQTT.js clients.
import net from 'node:net'
import { Aedes, type AedesOptions } from 'aedes'

interface Teardownable { teardown(fn: () => unknown): void }

/** `url`: mqtt://127.0.0.1:<port>; server and broker close at teardown. */
export async function listenBareAedes (t: Teardownable, opts: AedesOptions = {}): Promise<{ broker: Aedes, url: string }> {
  const broker = await Aedes.createBroker(opts)
  const server = net.createServer(broker.handle)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    await new Promise<void>(resolve => server.close(() => resolve()))
    await new Promise<void>(resolve => broker.close(() => resolve()))
  })
  return { broker, url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}` }
}
