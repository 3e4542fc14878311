// The baseline: a plain Aedes 1.2 broker, defaults only (in-memory persistence and
// emitter, no hooks), on 127.0.0.1:<port>. Run as its own process so its CPU time can
// be read from /proc like Threadline's.
//   node --import tsx bench/raw-aedes.ts <port>
import net from 'node:net'
import { Aedes } from 'aedes'

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('usage: raw-aedes.ts <port>\n')
  process.exit(2)
}

const broker = await Aedes.createBroker()
const server = net.createServer(broker.handle)
server.listen(port, '127.0.0.1', () => process.stdout.write(`raw aedes listening on 127.0.0.1:${port}\n`))

const stop = (): void => {
  server.close()
  broker.close(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
