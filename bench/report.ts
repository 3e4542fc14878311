// Turns phase reports into the verdicts of DESIGN.md §4 "Performance shape", a table for
// the terminal, latest.json and a markdown summary.
import type { BenchOptions } from './options.js'
import type { PhaseReport } from './phase.js'

export interface Verdict {
  name: string
  target: string
  measured: string
  pass: boolean | null
  note?: string
}

export interface BenchReport {
  startedAt: string
  command: string
  machine: { cpus: number, cpuModel: string, node: string, postgres: string | null, kernel: string }
  /** the code measured: HEAD and the server files that differed from it */
  code: { commit: string | null, modified: string[] }
  options: BenchOptions
  phases: PhaseReport[]
  verdicts: Verdict[]
  warnings: string[]
}

const find = (phases: PhaseReport[], target: string, mode: string): PhaseReport | undefined =>
  phases.find(p => p.target === target && p.mode === mode)

export function verdicts (phases: PhaseReport[], opts: BenchOptions): { verdicts: Verdict[], warnings: string[] } {
  const out: Verdict[] = []
  const warnings: string[] = []
  const tlMax = find(phases, 'threadline', 'max')
  const rawMax = find(phases, 'raw-aedes', 'max')
  if (tlMax !== undefined && rawMax !== undefined) {
    const ratio = tlMax.msgPerS / rawMax.msgPerS
    out.push({
      name: 'throughput ratio (Threadline persisted+delivered ÷ raw Aedes QoS 1)',
      target: '≥ 0.5',
      measured: `${ratio.toFixed(3)} (${tlMax.msgPerS} ÷ ${rawMax.msgPerS} msg/s)`,
      pass: ratio >= 0.5
    })
  }
  if (tlMax !== undefined && rawMax !== undefined) {
    // CPU per message holds up better than msg/s when other jobs share the machine
    out.push({
      name: 'CPU per persisted+delivered message in the max phase (DESIGN.md §4: ~850 µs per one-send transaction, ~30 µs raw)',
      target: 'information',
      measured: `Threadline ${tlMax.cpu.serverUsPerMsg} µs (broker ${tlMax.cpu.brokerUsPerMsg} + PostgreSQL ${tlMax.cpu.pgUsPerMsg}) vs raw Aedes ${rawMax.cpu.brokerUsPerMsg} µs: ` +
        `${(rawMax.cpu.brokerUsPerMsg / tlMax.cpu.serverUsPerMsg).toFixed(2)}× as many messages per CPU-second; load workers ${tlMax.cpu.workersUsPerMsg} vs ${rawMax.cpu.workersUsPerMsg} µs`,
      pass: null
    })
  }
  const tlRate = find(phases, 'threadline', 'rate')
  if (tlRate !== undefined) {
    const sustained = tlRate.msgPerS >= 0.98 * opts.ratePerS
    out.push({
      name: `Threadline p99 send→deliver at ${opts.ratePerS} msg/s, durable commits`,
      target: '≤ 10 ms',
      measured: `${tlRate.latencyMs.p99} ms (p50 ${tlRate.latencyMs.p50}, max ${tlRate.latencyMs.max}; ${tlRate.msgPerS} msg/s achieved)`,
      pass: tlRate.latencyMs.p99 <= 10 && sustained,
      ...(sustained ? {} : { note: 'the offered rate was not sustained' })
    })
  }
  const tlGroup = find(phases, 'threadline', 'group')
  if (tlGroup !== undefined) {
    out.push({
      name: `Threadline ${tlGroup.scenario.members}-member fan-out p99`,
      target: '≤ 25 ms',
      measured: `${tlGroup.latencyMs.p99} ms (p50 ${tlGroup.latencyMs.p50}, max ${tlGroup.latencyMs.max}; ${tlGroup.deliveredPerS} deliveries/s)`,
      pass: tlGroup.latencyMs.p99 <= 25
    })
  }
  const dirty = phases.filter(p => p.integrity.lost > 0 || p.integrity.duplicates > 0 || p.integrity.orderViolations > 0 ||
    p.integrity.unacked > 0 || p.integrity.errors > 0 || !p.integrity.drained)
  out.push({
    name: 'every PUBACKed send delivered to every member once, in order, within the drain period',
    target: '0 lost, 0 duplicates, 0 order violations, 0 unacked, 0 errors',
    measured: dirty.length === 0
      ? `clean in all ${phases.length} phases`
      : dirty.map(p => `${p.target}/${p.mode}: lost ${p.integrity.lost}, dup ${p.integrity.duplicates}, order ${p.integrity.orderViolations}, ` +
        `unacked ${p.integrity.unacked}, errors ${p.integrity.errors}${p.integrity.drained ? '' : ', still arriving when the drain period ended'}`).join('; '),
    pass: dirty.length === 0
  })
  for (const p of phases) {
    const issues: string[] = []
    if (p.cpu.othersPct >= 25) issues.push(`other jobs on the machine used ${p.cpu.othersPct}% of a core (machine ${p.cpu.machineBusyPct}% busy): figures are pessimistic`)
    else if (p.cpu.machineBusyPct >= 90) issues.push(`the machine was ${p.cpu.machineBusyPct}% busy: broker, PostgreSQL and the load workers compete for its cores`)
    const busiest = Math.max(...p.cpu.workersPct)
    if (busiest >= 85) issues.push(`a load worker used ${busiest}% of a core: the client side may limit this phase`)
    if (p.mode !== 'max' && p.schedulerLagMs.p99 > 2) issues.push(`the open-loop scheduler was ${p.schedulerLagMs.p99} ms late at p99 (included in the latency)`)
    if (issues.length > 0) warnings.push(`${p.target}/${p.mode}: ${issues.join('; ')}`)
  }
  return { verdicts: out, warnings }
}

/** A table for the terminal: the first `left` columns are text (left-aligned), the rest figures. */
export function pad (cells: string[][], left = 2): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map(r => (r[i] ?? '').length)))
  return cells.map(r => r.map((c, i) => i < left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')).join('\n')
}

/** The same table in Markdown, figures right-aligned. */
export function markdownTable (cells: string[][], left = 2): string[] {
  return [
    '| ' + cells[0]!.join(' | ') + ' |',
    '|' + cells[0]!.map((_, i) => i < left ? '---' : '---:').join('|') + '|',
    ...cells.slice(1).map(row => '| ' + row.join(' | ') + ' |')
  ]
}

/** The first lines of a report: title and time, command and machine, the code measured. */
export function heading (title: string, report: Pick<BenchReport, 'startedAt' | 'command' | 'machine' | 'code'>): string[] {
  return [
    `# ${title} — ${report.startedAt}`,
    '',
    `\`${report.command}\` on ${report.machine.cpus} × ${report.machine.cpuModel}, Node ${report.machine.node}, ${report.machine.postgres ?? 'no PostgreSQL'}, Linux ${report.machine.kernel}.`,
    `Code: ${report.code.commit ?? 'unknown commit'}${report.code.modified.length > 0 ? ` with uncommitted changes to ${report.code.modified.join(', ')}` : ''}.`
  ]
}

/** A figure, or – when there is none. */
export const f = (v: number | null | undefined, digits = 1): string => v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits)

function rows (phases: PhaseReport[]): string[][] {
  const head = ['target', 'mode', 'msg/s', 'deliv/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'lost', 'dup', 'order',
    'broker µs/msg', 'PG µs/msg', 'broker %', 'PG %', 'workers %', 'others %', 'machine %', 'sends/txn']
  return [head, ...phases.map(p => [
    p.target, p.mode + (p.load.window !== undefined ? ` w=${p.load.window}` : ` @${p.load.offeredPerS}/s`),
    f(p.msgPerS, 0), f(p.deliveredPerS, 0),
    f(p.latencyMs.p50, 2), f(p.latencyMs.p90, 2), f(p.latencyMs.p99, 2), f(p.latencyMs.max, 1),
    String(p.integrity.lost), String(p.integrity.duplicates), String(p.integrity.orderViolations),
    f(p.cpu.brokerUsPerMsg), f(p.cpu.pgUsPerMsg), f(p.cpu.brokerPct, 0), f(p.cpu.pgPct, 0),
    p.cpu.workersPct.map(w => w.toFixed(0)).join('+'), f(p.cpu.othersPct, 0), f(p.cpu.machineBusyPct, 0),
    p.pg !== null ? f(p.pg.sendsPerTransaction) : '–'
  ])]
}

export function table (report: BenchReport): string {
  const lines = [pad(rows(report.phases)), '']
  for (const v of report.verdicts) lines.push(`${v.pass === null ? 'INFO' : v.pass ? 'PASS' : 'FAIL'}  ${v.name}: ${v.measured} (target ${v.target})${v.note !== undefined ? ` — ${v.note}` : ''}`)
  for (const w of report.warnings) lines.push(`note  ${w}`)
  return lines.join('\n')
}

export function markdown (report: BenchReport): string {
  const r = rows(report.phases)
  const md = [
    ...heading('Threadline benchmark', report),
    'Broker, PostgreSQL and the load workers all run on this one machine over 127.0.0.1.',
    '',
    ...markdownTable(r),
    '',
    'Latency: send→deliver at the recipient, from the due time of each send (open loop) or its publish (closed loop). ' +
    'CPU per message: /proc utime+stime of the broker process and of every process of the throwaway PostgreSQL cluster over the measured window, divided by messages persisted and delivered in it.',
    '',
    '## Verdicts',
    '',
    ...report.verdicts.map(v => `- **${v.pass === null ? 'INFO' : v.pass ? 'PASS' : 'FAIL'}** ${v.name}: ${v.measured} (target ${v.target})${v.note !== undefined ? ` — ${v.note}` : ''}`),
    ...(report.warnings.length > 0 ? ['', '## Notes', '', ...report.warnings.map(w => `- ${w}`)] : []),
    '',
    '## Phase details',
    '',
    ...report.phases.map(p => [
      `### ${p.target} / ${p.mode}`,
      '',
      `- load: ${p.scenario.conversations} conversation(s), ${p.scenario.members} connected members, ${p.scenario.senders} senders, ` +
        (p.load.window !== undefined ? `closed loop, ${p.load.window} un-PUBACKed sends per sender` : `open loop at ${p.load.offeredPerS} sends/s`) +
        `, ${p.load.warmupS} s warm-up + ${p.load.durationS} s measured in ${p.load.rounds} round(s) alternating with the other target, ${p.load.workers} load workers`,
      `- throughput: ${p.msgPerS} msg/s persisted+delivered (${p.ackedPerS} PUBACKed/s, ${p.deliveredPerS} deliveries/s to recipients)`,
      `- latency ms: p50 ${p.latencyMs.p50}, p90 ${p.latencyMs.p90}, p99 ${p.latencyMs.p99}, p99.9 ${p.latencyMs.p999}, max ${p.latencyMs.max} (n = ${p.latencyMs.count}); ` +
        `from the publish call: p99 ${p.latencyFromPublishMs.p99}; scheduler lag p99 ${f(p.schedulerLagMs.p99, 3)}`,
      `- integrity: sent ${p.integrity.sent}, acked ${p.integrity.acked}, lost ${p.integrity.lost}, duplicates ${p.integrity.duplicates}, ` +
        `order violations ${p.integrity.orderViolations}, seq gaps ${p.integrity.seqGaps}, errors ${p.integrity.errors}, drained ${p.integrity.drained}` +
        (p.integrity.errorSamples.length > 0 ? ` (${p.integrity.errorSamples.join('; ')})` : ''),
      `- CPU: broker ${p.cpu.brokerPct}% (${p.cpu.brokerUsPerMsg} µs/msg, ${p.cpu.brokerUsPerDelivery} µs/delivery, RSS ${p.cpu.brokerRssMiB[0]} → ${p.cpu.brokerRssMiB[1]} MiB)` +
        (p.cpu.pgPct !== null ? `, PostgreSQL ${p.cpu.pgPct}% (${p.cpu.pgUsPerMsg} µs/msg), together ${p.cpu.serverUsPerMsg} µs/msg` : '') +
        `; load workers ${p.cpu.workersPct.join('% + ')}% (${p.cpu.workersUsPerMsg} µs/msg); other jobs on the machine ${p.cpu.othersPct}% (before the phase ${p.cpu.othersBeforePct ?? '–'}%); machine ${p.cpu.machineBusyPct}% busy`,
      ...(p.pg !== null
        ? [`- PostgreSQL: ${p.pg.transactions} write transactions, ${p.pg.sendsPerTransaction} sends per transaction, ${p.pg.cpuUsPerTransaction} µs of PostgreSQL CPU per transaction, ${p.pg.walBytesPerMsg} WAL bytes per send; ` +
          `CPU by process (% of a core): ${Object.entries(p.pg.cpuByProcessPct).map(([k, v]) => `${k} ${v}`).join(', ')}`]
        : []),
      ...(p.pg?.activity != null
        ? [`- PostgreSQL sessions (${p.pg.activity.samples} samples): a statement running ${p.pg.activity.activePct}% of the time, ` +
          `idle in transaction (waiting for the node) ${p.pg.activity.idleInTransactionPct}%, no transaction open ${p.pg.activity.noTransactionPct}%; ` +
          `waits ${JSON.stringify(p.pg.activity.waits)}`]
        : []),
      ''
    ].join('\n'))
  ]
  return md.join('\n')
}
