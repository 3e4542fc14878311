// The way from a notification to one provider: bounded, so that a provider that is down
// or never answers costs a fixed amount of memory and nothing else. At most `queueMax`
// notifications wait, run or wait for a retry (past it new ones are dropped and counted);
// at most CONCURRENCY requests are open at the provider, each given up after
// `timeoutMs`; 429, 5xx, timeouts and broken connections are retried `retries` times
// with exponential backoff and full jitter, then dropped and counted. Nothing here is on
// the path of a message: the queue is fed after the window closes.
import type { Logger } from '../../broker/logger.js'
import type { PushCounters } from '../../core/push/service.js'
import type { DeviceRow } from './devices.js'
import type { Notification } from './notification.js'
import type { Outcome, Provider } from './provider.js'

/** requests open at one provider at once */
export const CONCURRENCY = 16
/** the longest wait between two attempts, however many came before */
const MAX_BACKOFF_MS = 5 * 60_000

export interface QueueOptions {
  readonly queueMax: number
  readonly timeoutMs: number
  readonly retries: number
  readonly retryBaseMs: number
}

interface Job {
  readonly device: DeviceRow
  readonly notification: Notification
  /** attempts made so far */
  attempts: number
}

export class DeliveryQueue {
  readonly counters: PushCounters = { sent: 0, coalesced: 0, failed: 0, retried: 0, pruned: 0 }
  readonly #waiting: Job[] = []
  readonly #backoff = new Set<NodeJS.Timeout>()
  /** jobs between taken from #waiting and settled (their request may still run after a timeout) */
  #running = 0
  /** requests open at the provider, including ones given up on that have not ended yet */
  #open = 0
  #closed = false

  constructor (
    readonly provider: Provider,
    readonly options: QueueOptions,
    readonly prune: (device: DeviceRow) => Promise<boolean>,
    readonly log: Logger
  ) {}

  /** notifications held: waiting, running or waiting for a retry */
  get size (): number { return this.#waiting.length + this.#running + this.#backoff.size }

  /** Answers false (and counts the notification failed) when the queue is full. */
  push (device: DeviceRow, notification: Notification): boolean {
    if (this.#closed) return false
    if (this.size >= this.options.queueMax) {
      this.counters.failed++
      this.log.warn({ provider: this.provider.name, queueMax: this.options.queueMax }, 'push queue full: notification dropped')
      return false
    }
    this.counters.coalesced += notification.messages - 1
    this.#waiting.push({ device, notification, attempts: 0 })
    this.#pump()
    return true
  }

  close (): void {
    this.#closed = true
    this.#waiting.length = 0
    for (const timer of this.#backoff) clearTimeout(timer)
    this.#backoff.clear()
  }

  #pump (): void {
    while (!this.#closed && this.#open < CONCURRENCY && this.#waiting.length > 0) {
      void this.#run(this.#waiting.shift() as Job)
    }
  }

  async #run (job: Job): Promise<void> {
    this.#running++
    this.#open++
    job.attempts++
    const request = this.provider.send(job.device.push_token, job.device.platform, job.notification)
    // the slot stays taken until the request really ends, so a provider that never answers
    // holds CONCURRENCY requests open and no more
    void request.finally(() => {
      this.#open--
      this.#pump()
    })
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<Outcome>(resolve => {
      timer = setTimeout(() => resolve({ kind: 'retry', reason: `no answer within ${this.options.timeoutMs} ms` }), this.options.timeoutMs)
    })
    const outcome = await Promise.race([request, timeout])
    clearTimeout(timer)
    try {
      await this.#settle(job, outcome)
    } finally {
      this.#running--
    }
  }

  async #settle (job: Job, outcome: Outcome): Promise<void> {
    const log = { provider: this.provider.name, userId: job.device.user_id, deviceId: job.device.device_id }
    switch (outcome.kind) {
      case 'sent':
        this.counters.sent++
        return
      case 'gone':
        try {
          if (await this.prune(job.device)) this.counters.pruned++
          this.log.info({ ...log, reason: outcome.reason }, 'push token gone: deleted')
        } catch (err) {
          this.log.warn({ ...log, err }, 'could not delete a gone push token')
        }
        return
      case 'retry':
        if (job.attempts > this.options.retries || this.#closed) {
          this.counters.failed++
          this.log.warn({ ...log, reason: outcome.reason, attempts: job.attempts }, 'push given up after retries')
          return
        }
        this.counters.retried++
        this.#retryLater(job)
        return
      case 'failed':
        this.counters.failed++
        this.log.warn({ ...log, reason: outcome.reason }, 'push refused')
    }
  }

  #retryLater (job: Job): void {
    // full jitter: spread out so that retries after an outage don't all come back at once
    const ceiling = Math.min(MAX_BACKOFF_MS, this.options.retryBaseMs * 2 ** (job.attempts - 1))
    const timer = setTimeout(() => {
      this.#backoff.delete(timer)
      if (this.#closed) return
      this.#waiting.push(job)
      this.#pump()
    }, Math.random() * ceiling)
    this.#backoff.add(timer)
  }
}
