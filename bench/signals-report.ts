// The report of `npm run bench -- --scenario signals`: the same group with receipts and
// typing, coalescing on (THREADLINE_RECEIPT_WINDOW_MS=500) and off (0), side by side with
// the group without signals, on Threadline and (with raw-aedes in --targets) on raw Aedes.
import { type BenchReport, f, heading, markdownTable, pad } from './report.js'
import type { PhaseReport } from './phase.js'
import type { Target } from './protocol.js'

/** The labels of the variants that carry the group without any signals: what the others are measured against. */
export const NO_SIGNALS: Readonly<Record<Target, string>> = Object.freeze({ threadline: 'threadline no signals', 'raw-aedes': 'raw-aedes no signals' })

/** What the signals add to the CPU per message of one variant, against its target's variant without them (same run). */
export interface SignalsOverhead {
  label: string
  against: string
  /** CPU per message with signals ÷ without (issue 12's target: ≤ 1.2) */
  brokerRatio: number
  /** broker + PostgreSQL */
  serverRatio: number
  /** the broker's extra CPU per message ÷ receipts published per message: what one receipt costs, typing and summaries included */
  brokerUsPerReceipt: number | null
  /** other jobs on the machine in the two phases, % of one core */
  othersPct: [number, number]
}

export type SignalsReport = Omit<BenchReport, 'verdicts' | 'warnings'> & { overhead?: SignalsOverhead[] }

/** Issue 12: "the signals (receipts, typing) of the group scenario add ≤ 20% CPU per message". */
export const SIGNALS_TARGET_RATIO = 1.2

export function signalsOverhead (phases: readonly PhaseReport[]): SignalsOverhead[] {
  const out: SignalsOverhead[] = []
  for (const p of phases) {
    const base = phases.find(b => b.label === NO_SIGNALS[p.target])
    if (p.signals === null || base === undefined) continue
    const extra = p.cpu.brokerUsPerMsg - base.cpu.brokerUsPerMsg
    out.push({
      label: p.label,
      against: base.label,
      brokerRatio: p.cpu.brokerUsPerMsg / base.cpu.brokerUsPerMsg,
      serverRatio: p.cpu.serverUsPerMsg / base.cpu.serverUsPerMsg,
      brokerUsPerReceipt: p.signals.receiptsSentPerMsg > 0 ? extra / p.signals.receiptsSentPerMsg : null,
      othersPct: [p.cpu.othersPct, base.cpu.othersPct]
    })
  }
  return out
}

const pct = (ratio: number): string => `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(0)}%`

function overheadLines (phases: readonly PhaseReport[]): string[] {
  return signalsOverhead(phases).map(o =>
    `${o.label} ÷ ${o.against}, CPU per message: broker ${o.brokerRatio.toFixed(2)}× (${pct(o.brokerRatio)}), ` +
    (o.label.startsWith('threadline') ? `broker + PostgreSQL ${o.serverRatio.toFixed(2)}× (${pct(o.serverRatio)}), ` : '') +
    `${f(o.brokerUsPerReceipt, 1)} µs of broker CPU per receipt published; ` +
    (o.label.startsWith('threadline') ? `target ≤ ${SIGNALS_TARGET_RATIO}×: ${o.brokerRatio <= SIGNALS_TARGET_RATIO && o.serverRatio <= SIGNALS_TARGET_RATIO ? 'PASS' : 'FAIL'}; ` : '') +
    `others ${o.othersPct[0]}% / ${o.othersPct[1]}% of a core`)
}

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
  return [pad(rows(report.phases), 1), '', ...overheadLines(report.phases), ...notes(report)].join('\n')
}

export function signalsMarkdown (report: SignalsReport): string {
  const r = rows(report.phases)
  const p0 = report.phases[0]
  return [
    ...heading('Threadline signals benchmark', report),
    '',
    p0 !== undefined
      ? `One group of ${p0.scenario.members} members, all connected; ${p0.scenario.senders} of them send ${p0.load.offeredPerS} messages/s together; every other member answers each message with ${report.options.receipts === 'both' ? 'delivered + read' : 'a read receipt'} (QoS 0); ${report.options.typists} members type every 3 s. ` +
        'The "no signals" variants carry the same group without receipts or typing, on a server of their own: what the others\' CPU per message is measured against. ' +
        `${p0.load.warmupS} s warm-up + ${p0.load.durationS} s measured per target in ${p0.load.rounds} round(s), alternating.`
      : '',
    '',
    ...markdownTable(r, 1),
    '',
    ...overheadLines(report.phases).map(n => `- **${n.slice(0, n.indexOf(','))}**${n.slice(n.indexOf(','))}`),
    '',
    'Per message = per acknowledged send, over whole rounds (warm-up and drain included). Store writes: calls of the receipts write statement (pg_stat_statements). ' +
    'Summaries = conv + sender inbox: `receipts` summaries as received on conv/<c>/receipts (one watcher) and in the senders\' inboxes; own markers: envelopes with nothing but the receiver\'s own marker, in the readers\' inboxes (what keeps their devices\' unread counts in step), all members together. ' +
    'Latency: send→deliver of the messages at every member but the sender.',
    '',
    ...notes(report).map(n => `- ${n}`)
  ].join('\n')
}
