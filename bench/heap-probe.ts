// Preloaded into the server by `--scenario longpoll` and `--scenario connections` only
// (node --import; the latter into raw Aedes too), so the driver can read the server's
// memory the way bench/offline-queue.ts reads its own:
// on SIGUSR2 it collects garbage and prints one line, `BENCH_HEAP {json}`, with
// process.memoryUsage() and the HTTP requests in progress (held polls among them).
import { subscribe } from 'node:diagnostics_channel'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { HEAP_MARKER } from './protocol.js'

let inProgress = 0
subscribe('http.server.request.start', () => { inProgress++ })
subscribe('http.server.response.finish', () => { inProgress-- })

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

process.on('SIGUSR2', () => {
  gc()
  gc()
  const m = process.memoryUsage()
  process.stdout.write(HEAP_MARKER + JSON.stringify({ heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, rss: m.rss, httpInProgress: inProgress }) + '\n')
})

// the server stops gracefully on these, exit code 0: name the signal, so a server that
// ends in mid-run (another job's signal) is told apart from one that failed
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => process.stdout.write(`BENCH_SIGNAL ${sig}\n`))
