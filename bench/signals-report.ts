// The report of `npm run bench -- --scenario signals`: the same group with receipts and
// typing, coalescing on (THREADLINE_RECEIPT_WINDOW_MS=500) and off (0), side by side.
import { type BenchReport, f, heading, markdownTable, pad } from './report.js'
import type { PhaseReport } from './phase.js'

export type SignalsReport = Omit<BenchReport, 'verdicts' | 'warnings'>

function rows (phases: PhaseReport[]): string[][] {
  const head = ['target', 'msg/s', 'deliv/s', 'p50 ms', 'p99 ms', 'max ms', 'receipts in/msg', 'store writes/msg', 'summaries/msg',
    'conv/msg', 'sender inbox/msg', 'own markers/msg', 'typing/msg', 'broker µs/msg', 'PG µs/msg', 'broker %', 'PG %', 'workers %', 'others %', 'lost', 'dup', 'errors']
  return [head, ...phases.map(p => [
    p.label, f(p.msgPerS, 1), f(p.deliveredPerS, 0), f(p.latencyMs.p50, 2), f(p.latencyMs.p99, 2), f(p.latencyMs.max, 1),
    f(p.signals?.receiptsSentPerMsg, 1), f(p.signals?.storeWritesPerMsg, 3),
    f(p.signals !== null ? p.signals.convSummariesPerMsg + p.signals.inboxSummariesPerMsg : null, 3),
    f(p.signals?.convSummariesPerMsg, 3), f(p.signals?.inboxSummariesPerMsg, 3), f(p.signals?.ownMarkersPerMsg, 1), f(p.signals?.typingPerMsg, 2),
    f(p.cpu.brokerUsPerMsg, 0), f(p.cpu.pgUsPerMsg, 0), f(p.cpu.brokerPct, 0), f(p.cpu.pgPct, 0),
    p.cpu.workersPct.map(w => w.toFixed(0)).join('+'), f(p.cpu.othersPct, 0),
    String(p.integrity.lost), String(p.integrity.duplicates), String(p.integrity.errors)
  ])]
}

function notes (report: SignalsReport): string[] {
  const out: string[] = []
  for (const p of report.phases) {
    const s = p.signals
    if (s === null) continue
    out.push(`${p.label}: ${p.integrity.acked} sends acknowledged; ${s.receiptsSent} receipts and ${s.typingSent} typing publishes sent; ` +
      `${s.storeWrites ?? '–'} receipt writes; ${s.convSummaries} summaries on conv/<c>/receipts, ${s.inboxSummaries} in senders' inboxes, ${s.ownMarkers} own markers in readers' inboxes` +
      (p.integrity.errorSamples.length > 0 ? `; errors: ${p.integrity.errorSamples.join('; ')}` : ''))
  }
  return out
}

export function signalsTable (report: SignalsReport): string {
  return [pad(rows(report.phases), 1), '', ...notes(report)].join('\n')
}

export function signalsMarkdown (report: SignalsReport): string {
  const r = rows(report.phases)
  const p0 = report.phases[0]
  return [
    ...heading('Threadline signals benchmark', report),
    '',
    p0 !== undefined
      ? `One group of ${p0.scenario.members} members, all connected; ${p0.scenario.senders} of them send ${p0.load.offeredPerS} messages/s together; every other member answers each message with delivered + read (QoS 0); ${report.options.typists} members type every 3 s. ` +
        `${p0.load.warmupS} s warm-up + ${p0.load.durationS} s measured per target in ${p0.load.rounds} round(s), alternating.`
      : '',
    '',
    ...markdownTable(r, 1),
    '',
    'Per message = per acknowledged send, over whole rounds (warm-up and drain included). Store writes: calls of the receipts write statement (pg_stat_statements). ' +
    'Summaries = conv + sender inbox: `receipts` summaries as received on conv/<c>/receipts (one watcher) and in the senders\' inboxes; own markers: envelopes with nothing but the receiver\'s own marker, in the readers\' inboxes (what keeps their devices\' unread counts in step), all members together. ' +
    'Latency: send→deliver of the messages at every member but the sender.',
    '',
    ...notes(report).map(n => `- ${n}`)
  ].join('\n')
}
