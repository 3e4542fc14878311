// What held polls cost the server in memory (`--scenario longpoll`): its heap (JS heap +
// Buffers) and RSS after a forced GC (bench/heap-probe.ts answers SIGUSR2), read with
// every MQTT client connected and no queue, then with a queue open per long-poll client
// (its keep-alive connection idle), then with a poll held on each; deltas ÷ clients.
import { sleep } from '../test/services/util.js'
import type { Child } from './procs.js'
import { HEAP_MARKER } from './protocol.js'
import type { WorkerPool } from './workers.js'

const READ_TIMEOUT_MS = 10_000
const STEP_TIMEOUT_MS = 120_000

export interface HeapReading {
  /** heapUsed + arrayBuffers (payloads are Buffers, outside the JS heap) */
  heapBytes: number
  rssBytes: number
  /** HTTP requests the server had begun and not yet answered */
  httpInProgress: number
}

export interface HeldPollMemory {
  clients: number
  noQueue: HeapReading
  queuesOpen: HeapReading
  pollsHeld: HeapReading
  /** per client: a queue and its idle keep-alive connection */
  perQueueHeapBytes: number
  perQueueRssBytes: number
  /** per client, on top: one poll held on that connection */
  perHeldPollHeapBytes: number
  perHeldPollRssBytes: number
}

/** Asks the server (started with bench/heap-probe.ts) for its memory after a forced GC. */
export function readHeap (child: Child): Promise<HeapReading> {
  const out = child.proc.stdout
  if (out === null) return Promise.reject(new Error(`${child.name}: no stdout to read the heap probe from`))
  return new Promise((resolve, reject) => {
    let text = ''
    const done = (): void => {
      clearTimeout(timer)
      out.off('data', onData)
    }
    const onData = (d: Buffer): void => {
      text = (text + d.toString()).slice(-65_536)
      const at = text.indexOf(HEAP_MARKER)
      const end = at < 0 ? -1 : text.indexOf('\n', at)
      if (end < 0) return
      done()
      const m = JSON.parse(text.slice(at + HEAP_MARKER.length, end)) as { heapUsed: number, arrayBuffers: number, rss: number, httpInProgress: number }
      resolve({ heapBytes: m.heapUsed + m.arrayBuffers, rssBytes: m.rss, httpInProgress: m.httpInProgress })
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`${child.name} did not answer the heap probe within ${READ_TIMEOUT_MS} ms (was it started with bench/heap-probe.ts?)`))
    }, READ_TIMEOUT_MS)
    out.on('data', onData)
    child.proc.kill('SIGUSR2')
  })
}

/** Runs the long-poll worker's open and hold steps, reading the server's memory around them. */
export async function measureHeldPolls (child: Child, pool: WorkerPool, worker: number, clients: number): Promise<HeldPollMemory> {
  // connecting every MQTT client just before left garbage and pages the allocator has yet
  // to give back: one collection and a moment before the baseline
  await readHeap(child)
  await sleep(1000)
  const noQueue = await readHeap(child)
  await pool.ask(worker, { cmd: 'longpoll', step: 'open' }, 'longpoll', STEP_TIMEOUT_MS)
  const queuesOpen = await readHeap(child)
  await pool.ask(worker, { cmd: 'longpoll', step: 'hold' }, 'longpoll', STEP_TIMEOUT_MS)
  // every first poll is on the wire; the server holds it once it has read it (bounded wait)
  let pollsHeld = await readHeap(child)
  for (let i = 0; i < 50 && pollsHeld.httpInProgress - queuesOpen.httpInProgress < clients; i++) {
    await sleep(100)
    pollsHeld = await readHeap(child)
  }
  // reading a request is not yet holding it: let the handlers reach their wait
  await sleep(500)
  pollsHeld = await readHeap(child)
  const per = (a: number, b: number): number => Math.round((b - a) / Math.max(1, clients))
  return {
    clients,
    noQueue,
    queuesOpen,
    pollsHeld,
    perQueueHeapBytes: per(noQueue.heapBytes, queuesOpen.heapBytes),
    perQueueRssBytes: per(noQueue.rssBytes, queuesOpen.rssBytes),
    perHeldPollHeapBytes: per(queuesOpen.heapBytes, pollsHeld.heapBytes),
    perHeldPollRssBytes: per(queuesOpen.rssBytes, pollsHeld.rssBytes)
  }
}
