// Typing both ways. Outgoing: a `true` goes out at most once per interval while the user
// types (the protocol asks for one about every 3 s) and a `false` only after a `true`, so
// calling typing() on every keystroke costs nothing. Incoming: an indicator ends by
// itself `expireMs` after the last `true` from that user unless a `false` comes first.
import type { Timers, TimerHandle } from './timers.js'
import type { TypingChange } from './types.js'

export interface TypingOptions {
  timers: Timers
  me: string
  expireMs: number
  intervalMs: number
  /** publish a signal; false when it could not go out (offline) */
  publish (convId: string, typing: boolean): boolean
  changed (change: TypingChange): void
}

export class Typing {
  readonly #opts: TypingOptions
  /** when our last `true` went out per conversation; absent once a `false` did */
  readonly #sent = new Map<string, number>()
  /** remote indicators: conversation → user → expiry timer */
  readonly #remote = new Map<string, Map<string, TimerHandle>>()

  constructor (opts: TypingOptions) {
    this.#opts = opts
  }

  local (convId: string, typing: boolean, now = Date.now()): void {
    const last = this.#sent.get(convId)
    if (typing) {
      if (last !== undefined && now - last < this.#opts.intervalMs) return
      if (this.#opts.publish(convId, true)) this.#sent.set(convId, now)
    } else if (last !== undefined) {
      this.#sent.delete(convId)
      this.#opts.publish(convId, false)
    }
  }

  remote (convId: string, userId: string, typing: boolean): void {
    if (userId === this.#opts.me) return
    let users = this.#remote.get(convId)
    const timer = users?.get(userId)
    this.#opts.timers.clear(timer)
    if (typing) {
      if (users === undefined) this.#remote.set(convId, (users = new Map()))
      users.set(userId, this.#opts.timers.set(() => this.#end(convId, userId), this.#opts.expireMs))
      if (timer === undefined) this.#opts.changed({ conv_id: convId, user_id: userId, typing: true })
    } else if (timer !== undefined) {
      this.#end(convId, userId)
    }
  }

  /** A message from a user ends their indicator, as their client's `false` would. */
  stopped (convId: string, userId: string): void {
    if (this.#remote.get(convId)?.has(userId) === true) this.remote(convId, userId, false)
  }

  users (convId: string): string[] {
    return [...(this.#remote.get(convId)?.keys() ?? [])]
  }

  #end (convId: string, userId: string): void {
    const users = this.#remote.get(convId)
    if (users === undefined) return
    this.#opts.timers.clear(users.get(userId))
    users.delete(userId)
    if (users.size === 0) this.#remote.delete(convId)
    this.#opts.changed({ conv_id: convId, user_id: userId, typing: false })
  }
}
