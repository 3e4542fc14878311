// The one send path, shared by MQTT (conv/<c>/send) and HTTP (POST …/messages):
// validate → group commit (idempotency, seq, insert) → fan-out of the envelope.
// Validation and enqueueing happen synchronously inside send(), so the order of
// send() calls is the commit order (a sender's publish order, DESIGN.md §4).
import type { Logger } from '../../broker/logger.js'
import type { Store } from '../../broker/store/index.js'
import { isUnavailable } from '../../broker/store/index.js'
import { ThreadlineError, type EventEnvelope } from '../../schemas/index.js'
import { eventsTopic, inboxTopic } from '../acl/topics.js'
import { toEnvelope } from './envelopes.js'
import { commitBatch, type CommitResult, type PendingSend } from './event-store.js'
import { GroupCommitter } from './group-commit.js'
import { checkConvId, parseSend } from './parse-send.js'

export type Publish = (topic: string, payload: Buffer) => Promise<void>

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

export class SendService {
  readonly #committer: GroupCommitter<PendingSend, CommitResult>
  readonly #publish: Publish
  readonly #log: Logger
  #fanoutInFlight = 0
  #roomWaiters: Array<() => void> = []

  constructor (store: Store, publish: Publish, log: Logger) {
    this.#publish = publish
    this.#log = log
    this.#committer = new GroupCommitter(async (items) => {
      await this.#room()
      return await store.transaction(tx => commitBatch(tx, items))
    })
  }

  /**
   * Stores one send and fans it out. Resolves after the commit (the caller may then
   * acknowledge); rejects with a ThreadlineError: a catalog code for a rejected send,
   * `unavailable` when the store cannot be reached.
   */
  send (senderId: string, rawConvId: string, body: unknown): Promise<SendOutcome> {
    let pending: PendingSend
    try {
      pending = { convId: checkConvId(rawConvId), senderId, req: parseSend(body) }
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#committer.submit(pending).then(
      (result) => this.#deliver(pending, result),
      (err: unknown) => {
        if (isUnavailable(err)) throw new ThreadlineError('unavailable', 'the message store is unreachable; retry')
        this.#log.error({ err }, 'send commit failed')
        throw new ThreadlineError('unavailable', 'the send could not be stored; retry')
      })
  }

  /** Waits for every accepted send to be committed (graceful shutdown). */
  async drain (): Promise<void> { await this.#committer.drain() }

  #deliver (pending: PendingSend, result: CommitResult): SendOutcome {
    if (result.kind === 'rejected') throw result.error
    const envelope = toEnvelope(result.row)
    const payload = Buffer.from(JSON.stringify(envelope))
    // Fan-out failures (a Redis hiccup) must not fail a committed send: the event is
    // stored and every device catches up from the history API.
    const fail = (err: unknown): void => this.#log.error({ err, conv_id: envelope.conv_id, seq: envelope.seq }, 'fan-out failed')
    const send = (topic: string): void => {
      this.#fanoutInFlight++
      this.#publish(topic, payload).catch(fail).finally(() => this.#published())
    }
    if (result.kind === 'duplicate') {
      // a retry learns its seq on the sender's own inbox only (DESIGN.md §4 "Idempotent")
      send(inboxTopic(pending.senderId))
      return { created: false, envelope }
    }
    for (const member of result.members) send(inboxTopic(member))
    send(eventsTopic(envelope.conv_id))
    return { created: true, envelope }
  }

  #published (): void {
    this.#fanoutInFlight--
    if (this.#fanoutInFlight < MAX_FANOUT_IN_FLIGHT) for (const wake of this.#roomWaiters.splice(0)) wake()
  }

  async #room (): Promise<void> {
    while (this.#fanoutInFlight >= MAX_FANOUT_IN_FLIGHT) {
      await new Promise<void>(resolve => this.#roomWaiters.push(resolve))
    }
  }
}
