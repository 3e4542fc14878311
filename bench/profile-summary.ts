// Summarises a V8 .cpuprofile (node --cpu-prof, see `npm run bench -- --cpu-prof`): where
// the time went by package/file (self time) and the heaviest functions, self and inclusive.
//   npx tsx bench/profile-summary.ts <file.cpuprofile> [--top 30] [--match text] [--from µs --to µs]
//   npx tsx bench/profile-summary.ts <file.cpuprofile> --phase bench/results/latest.json:threadline/max
//   npx tsx bench/profile-summary.ts <file.cpuprofile> --phase bench/results/longpoll.json:longpoll/rate
// --from/--to: CLOCK_MONOTONIC µs; --phase takes the measured windows (windowsUs) of a
// phase from a bench report. V8 stamps profile samples with the same clock, so only that phase is counted.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

// `… | head` closes the pipe early: that is not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1))

interface Node {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

let args
try {
  args = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, match: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, phase: { type: 'string' } } })
} catch (err) {
  process.stderr.write(`profile-summary: ${(err as Error).message}\n`)
  process.exit(2)
}
const file = args.positionals[0]
const top = Number(args.values.top ?? '30')
const from = Number(args.values.from ?? '0')
const to = Number(args.values.to ?? String(Number.MAX_SAFE_INTEGER))
let windows: Array<[number, number]> = [[from, to]]
/** messages of the --phase (msg/s × measured seconds): each line then says µs per message too */
let messages: number | null = null
if (args.values.phase !== undefined) {
  const m = /^(.*):([^:/]+)\/([^:/]+)$/.exec(args.values.phase)
  if (m === null) {
    process.stderr.write('profile-summary: --phase wants <latest.json>:<target>/<mode>\n')
    process.exit(2)
  }
  const report = JSON.parse(readFileSync(m[1] as string, 'utf8')) as { phases: Array<{ target: string, label?: string, mode: string, windowsUs: Array<[number, number]>, msgPerS?: number, windowS?: number }> }
  // a label names one of several targets of a kind (longpoll.json: longpoll/rate, mqtt/rate, …)
  const p = report.phases.find(x => (x.target === m[2] || x.label === m[2]) && x.mode === m[3])
  if (p === undefined) {
    process.stderr.write(`profile-summary: no phase ${m[2]}/${m[3]} in ${m[1]}\n`)
    process.exit(2)
  }
  windows = p.windowsUs
  if (p.msgPerS !== undefined && p.windowS !== undefined && p.msgPerS > 0) messages = p.msgPerS * p.windowS
}
if (file === undefined || !Number.isInteger(top) || top <= 0 || !Number.isFinite(from) || !Number.isFinite(to)) {
  process.stderr.write('usage: profile-summary.ts <file.cpuprofile> [--top N] [--match text] [--from µs --to µs]\n')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map(n => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const self = new Map<number, number>()
let t = profile.startTime
let span = 0
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0
  t += dt
  if (!windows.some(([a, b]) => t >= a && t < b)) return
  span += dt
  self.set(id, (self.get(id) ?? 0) + dt)
})
const total = [...self.values()].reduce((a, b) => a + b, 0)

function where (n: Node): string {
  const url = n.callFrame.url
  if (url === '') return `(${n.callFrame.functionName || 'native'})`
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m !== null) return m[1] as string
  if (url.startsWith('node:')) return url
  // tsx reports a source as a path, a built server (dist/) as a file:// URL: both name Threadline's folders
  return url.replace(/^(?:file:\/\/)?\/.*?\/(?:dist\/)?(broker|core|plugins|schemas|sync-api|bench)\//, '$1/')
}
const label = (n: Node): string => `${n.callFrame.functionName || '(anonymous)'} ${where(n)}:${n.callFrame.lineNumber + 1}`

const pct = (us: number): string => `${(100 * us / total).toFixed(1).padStart(5)}%`
const perMsg = (us: number): string => messages === null ? '' : `  ${(us / messages).toFixed(2).padStart(6)} µs/msg`
const print = (title: string, m: Map<string, number>): void => {
  console.log(`\n${title}`)
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${(v / 1000).toFixed(0).padStart(7)} ms${perMsg(v)}  ${k}`)
}

/** Coarse buckets: Threadline's own code, its PostgreSQL driver, GC, the MQTT machinery it shares with raw Aedes. */
function category (w: string): string {
  if (w === '((idle))' || w === '((program))') return w.slice(1, -1)
  if (w === '((garbage collector))') return 'garbage collector'
  if (/^(broker|core|plugins|schemas|sync-api)\//.test(w)) return 'Threadline code (broker/, core/, plugins/, schemas/, sync-api/)'
  if (/^(pg|pg-protocol|pg-pool|pg-types|postgres-.*|pgpass|buffer-writer|packet-reader)$/.test(w)) return 'pg driver'
  if (/^(aedes.*|mqtt-packet|mqemitter.*|qlobber|bl|debug|fastparallel|fastfall|fastseries|reusify|retimer|hyperid|end-of-stream|process-nextick-args)$/.test(w)) return 'MQTT machinery (Aedes, mqtt-packet, mqemitter, qlobber)'
  if (/^(\(writev\)|\(writeBuffer\)|\(utf8Slice\)|node:net|node:internal\/stream.*|node:internal\/streams\/.*|node:buffer|node:internal\/buffer|node:events)$/.test(w)) return 'sockets, streams, buffers (node core)'
  if (/^(node:internal\/process\/task_queues|node:internal\/timers|node:timers|\(runMicrotasks\)|node:internal\/process\/promises)$/.test(w)) return 'event loop, timers, promises (node core)'
  return 'other'
}

const byCategory = new Map<string, number>()
const byWhere = new Map<string, number>()
const bySelf = new Map<string, number>()
const inclusive = new Map<string, number>()
for (const [id, us] of self) {
  const n = byId.get(id) as Node
  byWhere.set(where(n), (byWhere.get(where(n)) ?? 0) + us)
  byCategory.set(category(where(n)), (byCategory.get(category(where(n))) ?? 0) + us)
  bySelf.set(label(n), (bySelf.get(label(n)) ?? 0) + us)
  // each distinct function on the stack gets the sample once (recursion counted once)
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur) as Node)
    if (seen.has(l)) continue
    seen.add(l)
    inclusive.set(l, (inclusive.get(l) ?? 0) + us)
  }
}
if (total === 0) {
  process.stderr.write(`profile-summary: no samples in ${JSON.stringify(windows)} (profile spans ${profile.startTime}..${profile.endTime})\n`)
  process.exit(1)
}
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled over ${(span / 1e6).toFixed(1)} s in ${windows.length} window(s)` +
  (messages !== null ? `, ${Math.round(messages)} messages: ${(total / messages).toFixed(1)} µs/msg (idle included)` : ''))
print('self time by category', byCategory)
print('self time by package / file', byWhere)
print('self time by function', bySelf)
const match = args.values.match
print(`inclusive time by function${match !== undefined ? ` matching ${JSON.stringify(match)}` : ''}`,
  new Map([...inclusive].filter(([k]) => match === undefined || k.includes(match))))
