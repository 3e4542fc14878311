// What a load worker records of one phase, whatever carries the deliveries (MQTT in
// load-worker.ts, HTTP long-poll in longpoll-worker.ts): latency, duplicates, order, the
// loss bitmaps, and the drain that waits for every acknowledged send; and the worker's
// side of the IPC channel to the driver.
import * as hdr from 'hdr-histogram-js'
import { Bitmap } from './bitmap.js'
import {
  type DriverMessage, type ExpectCommand, type PhaseResult, type RunCommand, type SignalsResult, type WorkerMessage, nowUs, parseClientMsgId
} from './protocol.js'

const MAX_ERROR_SAMPLES = 5

export function tell (msg: WorkerMessage): void {
  process.send?.(msg)
}

/** Hands each of the driver's commands to `handle`; a failure is reported to the driver as fatal. */
export function listen (worker: number, handle: (msg: DriverMessage) => Promise<void> | void): void {
  const fatal = (err: unknown): void => {
    tell({ type: 'fatal', worker, message: err instanceof Error ? err.message : String(err) })
  }
  process.on('message', (raw) => {
    try {
      Promise.resolve(handle(raw as DriverMessage)).catch(fatal)
    } catch (err) {
      fatal(err)
    }
  })
  // The driver going away takes its workers with it.
  process.on('disconnect', () => process.exit(0))
}

export const histogram = (): hdr.Histogram =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 })

/** Everything recorded during one phase. */
export class Phase {
  readonly latencyIntended = histogram()
  readonly latencyActual = histogram()
  readonly schedulerLag = histogram()
  sent = 0
  acked = 0
  ackedInWindow = 0
  deliveredInWindow = 0
  delivered = 0
  echoed = 0
  duplicates = 0
  orderViolations = 0
  seqGaps = 0
  errors = 0
  stray = 0
  inflight = 0
  readonly errorSamples: string[] = []
  readonly signals: SignalsResult = { receiptsSent: 0, typingSent: 0, inboxSummaries: 0, ownMarkers: 0, convSummaries: 0 }
  readonly ackedBits = new Map<number, Bitmap>()
  readonly receivedBits = new Map<string, Bitmap>()
  /** `<user>\0<sender>` → distinct sends received (what the drain waits on) */
  readonly receivedCount = new Map<string, number>()
  /** sender index → sends PUBACKed */
  readonly ackedCount = new Map<number, number>()
  /** set by the driver's `expect`: sender index → sends acked across all workers */
  #expected: Map<number, number> | null = null
  #wakeExpect: (() => void) | null = null
  /**
   * Closed loop only: `<sender>.<n>` → what the send still waits for (its PUBACK and its
   * deliveries to local recipients) before its sender may publish the next one.
   */
  readonly open = new Map<string, { left: number, then: () => void }>()

  settle (key: string): void {
    const o = this.open.get(key)
    if (o === undefined || --o.left > 0) return
    this.open.delete(key)
    o.then()
  }

  /** `<user>\0<conv>` → last seq (Threadline) or `<user>\0<sender>` → last n (raw Aedes) */
  readonly lastOrder = new Map<string, number>()

  constructor (readonly run: RunCommand, readonly worker: number) {}

  error (message: string): void {
    this.errors++
    if (this.errorSamples.length < MAX_ERROR_SAMPLES) this.errorSamples.push(message)
  }

  expect (cmd: ExpectCommand): void {
    if (cmd.phase !== this.run.phase) return
    this.#expected = new Map(Object.entries(cmd.acked).map(([k, v]) => [Number(k), v]))
    this.#wakeExpect?.()
  }

  /**
   * After the `acked` report: waits for the driver's `expect`, then (until the deadline)
   * for every acknowledged send to reach each of `expectFrom`'s users; answers whether all did.
   */
  async drain (expectFrom: ReadonlyMap<string, readonly number[]>, deadline: number): Promise<boolean> {
    const expected = this.#expected ?? await new Promise<Map<number, number>>(resolve => {
      this.#wakeExpect = () => resolve(this.#expected as Map<number, number>)
    })
    const complete = (): boolean => {
      for (const [user, from] of expectFrom) {
        for (const sender of from) {
          if ((this.receivedCount.get(`${user}\u0000${sender}`) ?? 0) < (expected.get(sender) ?? 0)) return false
        }
      }
      return true
    }
    let drained = this.inflight === 0 && complete()
    while (!drained && nowUs() < deadline) {
      await pause()
      drained = this.inflight === 0 && complete()
    }
    return drained
  }

  result (drained: boolean, withSignals: boolean): PhaseResult {
    const bits = <K>(m: Map<K, Bitmap>): Record<string, string> =>
      Object.fromEntries([...m].map(([k, b]) => [String(k), b.toBase64()]))
    return {
      worker: this.worker,
      latencyFromIntended: hdr.encodeIntoCompressedBase64(this.latencyIntended),
      latencyFromActual: hdr.encodeIntoCompressedBase64(this.latencyActual),
      schedulerLag: hdr.encodeIntoCompressedBase64(this.schedulerLag),
      sent: this.sent,
      acked: this.acked,
      ackedInWindow: this.ackedInWindow,
      deliveredInWindow: this.deliveredInWindow,
      delivered: this.delivered,
      echoed: this.echoed,
      duplicates: this.duplicates,
      orderViolations: this.orderViolations,
      seqGaps: this.seqGaps,
      errors: this.errors,
      errorSamples: this.errorSamples,
      stray: this.stray,
      ackedBits: bits(this.ackedBits),
      receivedBits: bits(this.receivedBits),
      drained,
      ...(withSignals ? { signals: { ...this.signals } } : {})
    }
  }
}

export const pause = (): Promise<void> => new Promise(resolve => setTimeout(resolve, 20))

export const sleepUntil = (t: number): Promise<void> => new Promise(resolve => setTimeout(resolve, Math.max(0, (t - nowUs()) / 1000)))

/**
 * Books one bench send (`msg`, a text whose client_msg_id and text the sender stamped)
 * arriving at `user` at `at` µs. `seq` is its conversation's (Threadline) or null (raw
 * Aedes); `conv` keys the order check. Answers the first delivery to a member other than
 * its sender (`<sender>.<n>`, the closed loop's key); null for an echo, a duplicate or a
 * send of no sender of this phase.
 */
export function recordArrival (p: Phase, senderUsers: ReadonlyMap<number, string>, user: string, conv: string, seq: number | null,
  msg: Record<string, unknown>, at: number): string | null {
  const id = parseClientMsgId(String(msg.client_msg_id))
  if (id === null || id.phase !== p.run.phase || !senderUsers.has(id.sender)) {
    p.stray++
    return null
  }
  const bitsKey = `${user}\u0000${id.sender}`
  let bits = p.receivedBits.get(bitsKey)
  if (bits === undefined) p.receivedBits.set(bitsKey, bits = new Bitmap())
  if (bits.add(id.n)) {
    p.duplicates++
    return null
  }
  p.receivedCount.set(bitsKey, (p.receivedCount.get(bitsKey) ?? 0) + 1)
  // Threadline: seq grows per conversation at every member. Raw Aedes has no seq: a
  // sender's own publish order is what MQTT promises [MQTT-4.6.0-5].
  const orderKey = seq !== null ? `${user}\u0000${conv}` : bitsKey
  const order = seq ?? id.n
  const last = p.lastOrder.get(orderKey)
  if (last !== undefined && order <= last) p.orderViolations++
  else {
    if (seq !== null && last !== undefined && order > last + 1) p.seqGaps += order - last - 1
    p.lastOrder.set(orderKey, order)
  }
  if (senderUsers.get(id.sender) === user) {
    p.echoed++
    return null
  }
  p.delivered++
  if (at >= p.run.markAt && at < p.run.stopAt) p.deliveredInWindow++
  // the sender wrote "<due µs> <publish µs> <padding>"
  const text = String(msg.text)
  const space = text.indexOf(' ')
  const intended = Number(text.slice(0, space))
  const actual = Number(text.slice(space + 1, text.indexOf(' ', space + 1)))
  if (intended >= p.run.markAt && intended < p.run.stopAt) {
    p.latencyIntended.recordValue(Math.max(1, Math.round(at - intended)))
    p.latencyActual.recordValue(Math.max(1, Math.round(at - actual)))
  }
  return `${id.sender}.${id.n}`
}
