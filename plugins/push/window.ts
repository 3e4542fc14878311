// Coalescing (THREADLINE_PUSH_WINDOW_MS): the messages each user missed are gathered for
// one window, which the first message after a quiet spell opens; when it closes, each
// user gets at most one notification for all of it, and everything that closing needs
// (presence, mutes, tokens, badges, names) is asked for all the window's users at once.
// While one window is being sent the next one keeps gathering, so a slow store makes
// windows longer, never more of them at once.
import type { Logger } from '../../broker/logger.js'
import type { Tally } from './notification.js'

/** users one window gathers for; past it more are dropped (and counted) until it closes */
export const MAX_WINDOW_USERS = 100_000

export interface Missed {
  readonly convId: string
  readonly seq: number
  readonly senderId: string
  readonly text: string
}

export type Gathered = Map<string, Map<string, Tally>>

export class PushWindow {
  #users: Gathered = new Map()
  #timer: NodeJS.Timeout | null = null
  #closing = false
  #order = 0
  #stopped = false
  /** users left out because a window was full */
  overflow = 0

  constructor (
    readonly windowMs: number,
    readonly close: (users: Gathered) => Promise<void>,
    readonly log: Logger
  ) {}

  add (userId: string, missed: Missed): void {
    if (this.#stopped) return
    let convs = this.#users.get(userId)
    if (convs === undefined) {
      if (this.#users.size >= MAX_WINDOW_USERS) {
        this.overflow++
        return
      }
      convs = new Map()
      this.#users.set(userId, convs)
    }
    let tally = convs.get(missed.convId)
    if (tally === undefined) {
      tally = { convId: missed.convId, count: 0, lastSeq: 0, lastSender: missed.senderId, lastText: '', lastOrder: 0, senders: new Set() }
      convs.set(missed.convId, tally)
    }
    tally.count++
    if (tally.senders.size < 2) tally.senders.add(missed.senderId)
    // batches may be told out of seq order (presence is asked per batch): the highest seq is the newest
    if (missed.seq > tally.lastSeq) {
      tally.lastSeq = missed.seq
      tally.lastSender = missed.senderId
      tally.lastText = missed.text
      tally.lastOrder = ++this.#order
    }
    this.#open()
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#users = new Map()
  }

  #open (): void {
    if (this.#timer !== null || this.#closing) return
    this.#timer = setTimeout(() => { void this.#close() }, this.windowMs)
  }

  async #close (): Promise<void> {
    this.#timer = null
    const users = this.#users
    this.#users = new Map()
    this.#closing = true
    try {
      await this.close(users)
    } catch (err) {
      this.log.error({ err, users: users.size }, 'push window could not be sent')
    } finally {
      this.#closing = false
      if (this.#users.size > 0 && !this.#stopped) this.#open()
    }
  }
}
