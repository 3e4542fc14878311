// The one send path, shared by MQTT (conv/<c>/send) and HTTP (POST …/messages):
// validate → group commit (idempotency, seq, insert) → fan-out of the envelope.
// Validation and enqueueing happen synchronously inside send(), so the order of
// send() calls is the commit order (a sender's publish order, DESIGN.md §4).
import type { Logger } from 'pino'
import { isUnavailable, type Store } from '../store.js'
import { ThreadlineError, type EventEnvelope } from '../../schemas/index.js'
import { eventsTopic, inboxTopic } from '../topics.js'
import { toEnvelope } from './envelopes.js'
import { commitBatch, type CommitResult, type PendingSend } from './event-store.js'
import { GroupCommitter } from './group-commit.js'
import { checkConvId, parseSend } from './parse-send.js'
import { serviceKey } from '../services.js'
import type { Telemetry, Transport } from '../telemetry.js'

/** The one send path of a node: plugins/messages (MQTT) and the REST side use it. */
export const SEND_SERVICE = serviceKey<SendService>('sends')

/**
 * Hands one fan-out payload to the broker; `done` is called once, when it has gone to every
 * subscriber, with an error if it failed. Callback style: a send makes one publish per
 * recipient and the path pays no promise for each.
 */
export type Publish = (topic: string, payload: Buffer, done: (err?: Error | null) => void) => void

interface FanOut { created: boolean, envelope: EventEnvelope, payload: Buffer, topics: string[] }

type Committed =
  | { kind: 'done', created: boolean, envelope: EventEnvelope }
  | { kind: 'rejected', error: ThreadlineError }

/** A newly stored event, as the events-committed hook sees it. */
export interface CommittedEvent {
  readonly envelope: EventEnvelope
  /** the conversation's members when the event was stored, sender included */
  readonly members: readonly string[]
}

/** Called once per committed batch that stored something, after the commit and off the PUBACK path. */
export type CommittedListener = (events: readonly CommittedEvent[]) => void

/** Where a send came from: what its answer is counted under (telemetry `send`). */
export interface SendOrigin {
  readonly transport: Transport
  /** performance.now() when the send arrived (the PUBLISH, the HTTP request) */
  readonly since: number
  /**
   * The ordered stream the send came on (an MQTT connection): after an `unavailable`,
   * that lane's later sends fail too rather than commit ahead of the one its client resends.
   */
  readonly lane?: object
}

export interface SendOutcome {
  /** false when this was a retry of an already stored send */
  created: boolean
  envelope: EventEnvelope
}

/**
 * Fan-out publishes allowed in flight before the next batch waits. PUBACK goes out at
 * commit, before delivery (DESIGN.md §4), so without this bound nothing would slow
 * senders down when delivery falls behind and the backlog would grow in memory. Held
 * batches hold their PUBACKs, and MQTT clients' in-flight windows do the rest.
 */
export const MAX_FANOUT_IN_FLIGHT = 4096

/** Sends queued for a commit before readers are held back (GroupCommitter maxQueued). */
export const MAX_QUEUED_SENDS = 10_000

export interface SendServiceOptions {
  /**
   * Batches in flight at once on PostgreSQL, each on its own pool connection, for
   * disjoint conversations (a conversation's sends still commit one batch after another).
   * 1 (the default) batches best: every send waiting joins the next batch, which is what
   * keeps PostgreSQL's CPU per send low. More helps where COMMIT's flush is slow (a disk
   * that takes milliseconds): while one batch waits for its flush the next executes, and
   * PostgreSQL flushes their WAL together. THREADLINE_COMMIT_CONCURRENCY.
   */
  commitConcurrency?: number
  /**
   * When a batch committed less than this many ms ago and fewer than 8 sends wait, the
   * next batch waits out the rest of it for more sends to join: fewer, bigger
   * transactions at a steady rate, for a millisecond or so more latency. A send to an
   * idle node never waits. THREADLINE_COMMIT_GATHER_MS (default 0: never).
   */
  commitGatherMs?: number
}

/** How often a batch that PostgreSQL aborted as a deadlock or serialization failure is run again. */
const TRANSIENT_RETRIES = 3

export class SendService {
  readonly #committer: GroupCommitter<PendingSend, Committed>
  readonly #store: Store
  readonly #publish: Publish
  readonly #log: Logger
  readonly #telemetry: Telemetry | undefined
  #fanoutInFlight = 0
  #fanoutPeak = 0
  #roomWaiters: Array<() => void> = []
  readonly #committedListeners: CommittedListener[] = []

  /** `telemetry`: told of each send's answer (`send`) and each commit (`commit`) */
  constructor (store: Store, publish: Publish, log: Logger, telemetry?: Telemetry, options: SendServiceOptions = {}) {
    this.#store = store
    this.#publish = publish
    this.#log = log
    this.#telemetry = telemetry
    this.#committer = new GroupCommitter(async (items) => {
      const started = performance.now()
      const results = await this.#commit(items)
      if (telemetry?.watched('commit') === true) telemetry.emit('commit', { size: items.length, ms: performance.now() - started })
      // Fan-out is counted before it starts, send by send: a batch of 500 sends to a
      // 256-member group would otherwise put 128,000 publishes in flight at once. A send's
      // answer (its PUBACK) waits for its room, which is what slows senders down.
      const out: Committed[] = []
      const stored: CommittedEvent[] = []
      for (let i = 0; i < items.length; i++) {
        const result = results[i] as CommitResult
        if (result.kind === 'rejected') {
          out.push(result)
          continue
        }
        const fanOut = this.#fanOutOf(items[i] as PendingSend, result)
        if (result.kind === 'stored') stored.push({ envelope: fanOut.envelope, members: result.members })
        if (!this.#fits(fanOut.topics.length)) await this.#room(fanOut.topics.length)
        out.push(this.#start(fanOut))
      }
      if (stored.length > 0 && this.#committedListeners.length > 0) this.#announceCommitted(stored)
      return out
    }, {
      maxQueued: MAX_QUEUED_SENDS,
      laneOf: item => item.lane,
      // PGlite is one connection: its batches run one at a time whatever we ask
      concurrency: store.driver === 'pg' ? options.commitConcurrency ?? 1 : 1,
      keyOf: item => item.convId,
      gatherMs: options.commitGatherMs ?? 0
    })
  }

  /**
   * Stores one send and fans it out. Resolves after the commit (the caller may then
   * acknowledge); rejects with a ThreadlineError: a catalog code for a rejected send,
   * `unavailable` when the store cannot be reached.
   */
  send (senderId: string, rawConvId: string, body: unknown, origin: SendOrigin): Promise<SendOutcome> {
    let pending: PendingSend
    try {
      pending = { convId: checkConvId(rawConvId), senderId, req: parseSend(body), lane: origin.lane }
    } catch (err) {
      if (err instanceof ThreadlineError) this.refused(origin, err)
      return Promise.reject(err)
    }
    return this.#committer.submit(pending).then(
      (done) => {
        if (done.kind === 'rejected') {
          this.refused(origin, done.error)
          throw done.error
        }
        if (this.#telemetry?.watched('send') === true) {
          this.#telemetry.emit('send', { transport: origin.transport, result: done.created ? 'ok' : 'duplicate', ms: performance.now() - origin.since })
        }
        return { created: done.created, envelope: done.envelope }
      },
      (err: unknown) => {
        const refusal = err instanceof ThreadlineError ? err : new ThreadlineError('unavailable', 'the send could not be stored; retry')
        if (refusal !== err) this.#log.error({ err }, 'send commit failed')
        this.refused(origin, refusal)
        throw refusal
      })
  }

  /** Counts a send answered with an error (telemetry `send`), here or before it reached send(). */
  refused (origin: SendOrigin, err: ThreadlineError): void {
    if (this.#telemetry?.watched('send') === true) {
      this.#telemetry.emit('send', { transport: origin.transport, result: err.code, ms: performance.now() - origin.since })
    }
  }

  /** Listens for committed batches (the plugins' eventsCommitted hook); answers how to stop. */
  onCommitted (listener: CommittedListener): () => void {
    this.#committedListeners.push(listener)
    return () => {
      const i = this.#committedListeners.indexOf(listener)
      if (i >= 0) this.#committedListeners.splice(i, 1)
    }
  }

  /**
   * After the batch's answers: setImmediate runs once the promise callbacks that send
   * the PUBACKs have, so a listener's work never delays an acknowledgement.
   */
  #announceCommitted (events: readonly CommittedEvent[]): void {
    setImmediate(() => {
      for (const listener of this.#committedListeners) {
        try {
          listener(events)
        } catch (err) {
          this.#log.error({ err }, 'events-committed listener failed')
        }
      }
    })
  }

  /** sends accepted and not answered yet */
  get pending (): number { return this.#committer.pending }

  /** Fan-out publishes in flight now, and the most there have been at once. */
  get fanout (): { inFlight: number, peak: number } { return { inFlight: this.#fanoutInFlight, peak: this.#fanoutPeak } }

  /** Waits for every accepted send to be committed (graceful shutdown). */
  async drain (): Promise<void> { await this.#committer.drain() }

  /**
   * One transaction for the batch. A value PostgreSQL refuses (SQLSTATE class 22 data
   * exception, 23 integrity violation) aborts the whole transaction: the batch is split
   * and each half committed on its own, down to the one send that can't be stored, which
   * alone is refused. Halves commit in order, so seqs keep the senders' order. Only a
   * store that can't be reached fails the batch (`unavailable`).
   */
  async #commit (items: readonly PendingSend[], attempt = 0): Promise<CommitResult[]> {
    try {
      // one statement: its own transaction
      return await commitBatch(this.#store, items)
    } catch (err) {
      if (isUnavailable(err)) throw new ThreadlineError('unavailable', 'the message store is unreachable; retry')
      const sqlstate = sqlstateOf(err)
      if (sqlstate?.startsWith('40') === true && attempt < TRANSIENT_RETRIES) return await this.#commit(items, attempt + 1)
      if (items.length > 1) {
        const half = Math.ceil(items.length / 2)
        return [...await this.#commit(items.slice(0, half)), ...await this.#commit(items.slice(half))]
      }
      const dataError = sqlstate !== undefined && /^2[23]/.test(sqlstate)
      this.#log[dataError ? 'warn' : 'error']({ err, sqlstate, conv_id: items[0]?.convId, sender_id: items[0]?.senderId }, 'send refused by the store')
      return [{
        kind: 'rejected',
        error: dataError
          ? new ThreadlineError('bad_request', `the store cannot hold this send (SQLSTATE ${sqlstate})`)
          : new ThreadlineError('internal', 'the send could not be stored because of a server fault; it was not stored')
      }]
    }
  }

  /** The publishes a committed send makes. */
  #fanOutOf (pending: PendingSend, result: Exclude<CommitResult, { kind: 'rejected' }>): FanOut {
    const envelope = toEnvelope(result.row)
    return {
      created: result.kind === 'stored',
      envelope,
      payload: Buffer.from(JSON.stringify(envelope)),
      // a retry learns its seq on the sender's own inbox only (DESIGN.md §4 "Idempotent")
      topics: result.kind === 'duplicate'
        ? [inboxTopic(pending.senderId)]
        : [...result.members.map(inboxTopic), eventsTopic(envelope.conv_id)]
    }
  }

  #start ({ created, envelope, payload, topics }: FanOut): Committed {
    // Fan-out failures (a Redis hiccup) must not fail a committed send: the event is
    // stored and every device catches up from the history API.
    const settled = (err?: unknown): void => {
      if (err !== undefined && err !== null) this.#log.error({ err, conv_id: envelope.conv_id, seq: envelope.seq }, 'fan-out failed')
      this.#published()
    }
    for (const topic of topics) {
      if (++this.#fanoutInFlight > this.#fanoutPeak) this.#fanoutPeak = this.#fanoutInFlight
      try {
        this.#publish(topic, payload, settled)
      } catch (err) {
        settled(err)
      }
    }
    return { kind: 'done', created, envelope }
  }

  #published (): void {
    this.#fanoutInFlight--
    if (this.#fanoutInFlight < MAX_FANOUT_IN_FLIGHT) for (const wake of this.#roomWaiters.splice(0)) wake()
  }

  /** whether `n` more publishes fit the bound; a send larger than the bound goes alone */
  #fits (n: number): boolean {
    return this.#fanoutInFlight === 0 || this.#fanoutInFlight + n <= MAX_FANOUT_IN_FLIGHT
  }

  async #room (n: number): Promise<void> {
    while (!this.#fits(n)) await new Promise<void>(resolve => this.#roomWaiters.push(resolve))
  }
}

function sqlstateOf (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}
