// The report of `npm run bench -- --scenario longpoll`: one row per variant and kind of
// recipient (MQTT, long-poll), in the default bench's columns; then what one delivery
// costs the broker each way (each variant against the one whose third member has no
// device) and what held polls cost in memory.
import type { HeldPollMemory } from './longpoll-memory.js'
import type { LatencyFigures, PhaseReport } from './phase.js'
import { f, heading, markdownTable, pad } from './report.js'
import { CONVS_PER_SENDER } from './scenario.js'
import type { SignalsReport } from './signals-report.js'

export type LongPollReport = SignalsReport & { memory: HeldPollMemory }

const kib = (bytes: number): string => (bytes / 1024).toFixed(1)
const mib = (bytes: number): string => (bytes / 1048576).toFixed(1)

function rows (phases: PhaseReport[]): string[][] {
  const head = ['variant', 'recipients', 'msg/s', 'deliv/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'p99 from due', 'lost', 'dup', 'order',
    'broker µs/msg', 'PG µs/msg', 'broker µs/deliv', 'broker %', 'PG %', 'workers %', 'others %']
  const out = [head]
  for (const p of phases) {
    const lp = p.longpoll
    const cpu = [f(p.cpu.brokerUsPerMsg), f(p.cpu.pgUsPerMsg), f(p.cpu.brokerUsPerDelivery), f(p.cpu.brokerPct, 0), f(p.cpu.pgPct, 0),
      p.cpu.workersPct.map(w => w.toFixed(0)).join('+'), f(p.cpu.othersPct, 0)]
    const latency = (fromPublish: LatencyFigures, fromDue: LatencyFigures): string[] =>
      [f(fromPublish.p50, 2), f(fromPublish.p90, 2), f(fromPublish.p99, 2), f(fromPublish.max, 1), f(fromDue.p99, 2)]
    out.push([
      p.label, lp !== null ? 'MQTT' : p.scenario.recipientsPerSend > 1 ? 'MQTT (both)' : 'MQTT (third away)',
      f(p.msgPerS, 0), f(p.deliveredPerS - (lp?.deliveredPerS ?? 0), 0),
      ...latency(p.latencyFromPublishMs, p.latencyMs),
      String(p.integrity.lost - (lp?.lost ?? 0)), String(p.integrity.duplicates - (lp?.duplicates ?? 0)),
      String(p.integrity.orderViolations - (lp?.orderViolations ?? 0)),
      ...cpu
    ])
    if (lp !== null) {
      out.push([
        p.label, 'long-poll', f(p.msgPerS, 0), f(lp.deliveredPerS, 0),
        ...latency(lp.latencyFromPublishMs, lp.latencyMs),
        String(lp.lost), String(lp.duplicates), String(lp.orderViolations),
        // one server did both: its CPU is the phase's, on the row above
        ...cpu.map(() => '"')
      ])
    }
  }
  return out
}

/** The broker's and PostgreSQL's CPU per send of a variant above the `offline` one: what its third member's delivery costs. */
function marginal (phases: PhaseReport[], label: string): { broker: number, pg: number | null } | null {
  const p = phases.find(x => x.label === label)
  const base = phases.find(x => x.label === 'offline')
  if (p === undefined || base === undefined) return null
  const pg = p.cpu.pgUsPerMsg !== null && base.cpu.pgUsPerMsg !== null ? p.cpu.pgUsPerMsg - base.cpu.pgUsPerMsg : null
  return { broker: p.cpu.brokerUsPerMsg - base.cpu.brokerUsPerMsg, pg }
}

function findings (report: LongPollReport): string[] {
  const out: string[] = []
  const m = report.memory
  out.push(`memory, ${m.clients} long-poll clients: a queue with its idle keep-alive connection ${kib(m.perQueueHeapBytes)} KiB heap, ` +
    `${kib(m.perQueueRssBytes)} KiB RSS each; a poll held on it ${kib(m.perHeldPollHeapBytes)} KiB heap, ${kib(m.perHeldPollRssBytes)} KiB RSS more; ` +
    `together ${kib(m.perQueueHeapBytes + m.perHeldPollHeapBytes)} KiB heap, ${kib(m.perQueueRssBytes + m.perHeldPollRssBytes)} KiB RSS per long-poll client ` +
    `(server heap + Buffers after GC ${mib(m.noQueue.heapBytes)} → ${mib(m.queuesOpen.heapBytes)} → ${mib(m.pollsHeld.heapBytes)} MiB, ` +
    `RSS ${mib(m.noQueue.rssBytes)} → ${mib(m.queuesOpen.rssBytes)} → ${mib(m.pollsHeld.rssBytes)} MiB; ` +
    `HTTP requests in progress at the last reading: ${m.pollsHeld.httpInProgress})`)
  const lp = marginal(report.phases, 'longpoll')
  const mq = marginal(report.phases, 'mqtt')
  if (lp !== null && mq !== null) {
    const pg = (x: number | null): string => x !== null ? `, PostgreSQL ${f(x)}` : ''
    const batches = report.phases.map(p => `${p.label} ${f(p.pg?.sendsPerTransaction)}`).join(', ')
    out.push(`CPU of one delivery to the third member (µs per send above the variant whose third member has no device): long-poll: broker ${f(lp.broker)}${pg(lp.pg)}; ` +
      `MQTT: broker ${f(mq.broker)}${pg(mq.pg)}. The sends and their commits are the same, but a busier broker lets group commit batch more ` +
      `(sends per transaction: ${batches}), which lowers PostgreSQL's CPU per send: its difference is not the delivery's`)
  }
  for (const p of report.phases) {
    const lp = p.longpoll
    if (lp !== null) {
      out.push(`${p.label}: ${lp.polls.answersPerS} poll answers/s in the measured windows, ${lp.polls.eventsPerAnswer} events per answer, ` +
        `${lp.polls.empty} empty (held to the timeout), ${lp.polls.failed} failed polls, ${lp.errors} errors; ` +
        `from the send's due time p50 ${f(lp.latencyMs.p50, 2)} / p99 ${f(lp.latencyMs.p99, 2)} ms`)
    }
    const issues: string[] = []
    if (p.integrity.unacked > 0 || !p.integrity.drained) issues.push(`${p.integrity.unacked} sends unacknowledged, drained ${p.integrity.drained}`)
    if (p.integrity.errors > 0) issues.push(`${p.integrity.errors} errors (${p.integrity.errorSamples.join('; ')})`)
    if (p.cpu.othersPct >= 25) issues.push(`other jobs on the machine used ${p.cpu.othersPct}% of a core: figures are pessimistic`)
    if (p.schedulerLagMs.p99 > 2) issues.push(`the open-loop scheduler was ${p.schedulerLagMs.p99} ms late at p99`)
    if (issues.length > 0) out.push(`${p.label}: ${issues.join('; ')}`)
  }
  return out
}

export function longPollTable (report: LongPollReport): string {
  return [pad(rows(report.phases)), '', ...findings(report)].join('\n')
}

export function longPollMarkdown (report: LongPollReport): string {
  const r = rows(report.phases)
  const p0 = report.phases[0]
  return [
    ...heading('Threadline long-poll benchmark', report),
    '',
    p0 !== undefined
      ? `${p0.scenario.conversations} three-member groups per variant (an MQTT sender per ${CONVS_PER_SENDER} groups, an MQTT recipient, and a third member: long-poll, MQTT, or no device), ` +
        `${p0.load.offeredPerS} sends/s per variant, open loop; ${p0.load.warmupS} s warm-up + ${p0.load.durationS} s measured per variant in ${p0.load.rounds} round(s), alternating.`
      : '',
    '',
    ...markdownTable(r),
    '',
    'Latency: from the send\'s publish to its arrival at the recipient (MQTT: the PUBLISH; long-poll: the whole poll answer carrying it); ' +
    '"p99 from due" counts from the open-loop schedule instead. CPU: the phase\'s, over messages persisted and delivered (" = the row above: one server did both).',
    '',
    ...findings(report).map(n => `- ${n}`)
  ].join('\n')
}
