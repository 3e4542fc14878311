// One client's PUBLISHes keep their arrival order through the plugins' hooks and in the
// acknowledgements (DESIGN.md §4: a sender's sends commit in the order it sent them).
// Aedes dispatches all packets of one socket read at once, without waiting for the
// previous packet's authorizePublish to call back, so order is the registry's job.
import type { Client } from 'aedes'
import { ANSWERED, type MaybePromise } from './plugin.js'

export function isPromise<T> (v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | undefined)?.then === 'function'
}

/** How far one packet has got through the hook chain. */
interface Progress {
  /** hooks this packet has entered (called) */
  entered: number
  finished: boolean
  /** the next packet, waiting to enter hook `stage` */
  waiter: { stage: number, wake: () => void } | null
}

const LAST = Symbol('threadline.lastPublish')
const ACK_TAIL = Symbol('threadline.ackTail')
type Tracked = Client & { [LAST]?: Progress, [ACK_TAIL]?: Answer | null }

function wakeIfPassed (p: Progress): void {
  const w = p.waiter
  if (w !== null && (p.finished || p.entered > w.stage)) {
    p.waiter = null
    // a microtask, not a call: a long line of waiting packets must not nest stack frames
    queueMicrotask(w.wake)
  }
}

/**
 * Runs `hooks` for one packet of `client`. A packet enters each hook only after the
 * client's previous packet has entered it (or finished), so every hook sees a client's
 * packets in arrival order however long the hooks before it take: a hook that awaits a
 * Redis round trip for one packet and answers the next at once can't swap them for the
 * hooks after it. A hook that keeps the packet (a send waiting for its commit) does not
 * hold the next packet back: entering is enough. A hook that answers ANSWERED finishes
 * the packet there: the hooks after it never see it. With nothing pending it all runs
 * synchronously.
 */
export function runInOrder<A extends [Client, ...unknown[]]> (hooks: ReadonlyArray<(...args: A) => MaybePromise<unknown>>, args: A, done: (err: Error | null) => void): void {
  const client = args[0] as Tracked
  let prev: Progress | null = client[LAST] ?? null
  if (prev !== null && (prev.finished || prev.entered >= hooks.length)) prev = null
  const me: Progress = { entered: 0, finished: false, waiter: null }
  client[LAST] = me
  const finish = (err: Error | null): void => {
    me.finished = true
    if (client[LAST] === me) delete client[LAST]
    wakeIfPassed(me)
    done(err)
  }
  const step = (answer?: unknown): void => {
    if (answer === ANSWERED) {
      finish(null)
      return
    }
    while (me.entered < hooks.length) {
      const stage = me.entered
      if (prev !== null) {
        if (prev.finished || prev.entered > stage) {
          if (prev.finished || prev.entered >= hooks.length) prev = null
        } else {
          prev.waiter = { stage, wake: step }
          return
        }
      }
      let r: MaybePromise<unknown>
      try {
        r = (hooks[stage] as (...args: A) => MaybePromise<unknown>)(...args)
      } catch (err) {
        finish(err as Error)
        return
      }
      me.entered = stage + 1
      wakeIfPassed(me)
      if (isPromise(r)) {
        r.then(step, (err: Error) => finish(err))
        return
      }
      if (r === ANSWERED) {
        finish(null)
        return
      }
    }
    finish(null)
  }
  step()
}

/** A packet's answer waiting for its turn: a client's answers leave in its packets' order. */
interface Answer {
  err: Error | null
  /** the hooks have answered (err is the outcome) */
  known: boolean
  /** every answer before this one has been given */
  head: boolean
  readonly callback: (err: Error | null) => void
  next: Answer | null
}

/**
 * [MQTT-4.6.0-2]: PUBACKs leave in the order the PUBLISHes came. Aedes acknowledges
 * when authorizePublish calls back, and a send waiting for its commit calls back later
 * than a rejected one behind it would, so a packet's answer waits for the answer of
 * the packet before it. Packets answered synchronously with nothing pending skip this.
 * A client's waiting answers form a list (its tail on the client); one object per packet,
 * no promise: every send takes this path.
 */
export function answerInOrder (client: Client, run: (cb: (err: Error | null) => void) => void, callback: (err: Error | null) => void): void {
  const tracked = client as Tracked
  let me: Answer | null = null
  let syncErr: Error | null | undefined
  run((err) => {
    if (me === null) {
      syncErr = err
      return
    }
    me.err = err
    me.known = true
    if (me.head) giveAnswers(tracked, me)
  })
  const before = tracked[ACK_TAIL] ?? null
  if (syncErr !== undefined && before === null) return callback(syncErr)
  me = { err: syncErr ?? null, known: syncErr !== undefined, head: before === null, callback, next: null }
  if (before !== null) before.next = me
  tracked[ACK_TAIL] = me
}

/** Gives the known answers from `from`, the head of the client's list, on. */
function giveAnswers (tracked: Tracked, from: Answer): void {
  let a: Answer | null = from
  while (a !== null && a.known) {
    const next: Answer | null = a.next
    // the last one: a packet that comes while Aedes handles this answer starts a new list
    if (next === null) tracked[ACK_TAIL] = null
    a.callback(a.err)
    // only now the head: an answer that becomes known during the callback waits for this loop
    if (next !== null) next.head = true
    a = next
  }
}
