// Every publish handed to the plugins settles within a bound, even if Aedes or its
// emitter never calls back (a hung dependency, a lost callback): the send path counts
// fan-out publishes in flight and releases a slot only when one settles, so one that
// never settles would, a few thousand later, stop every send of the node.
//
// One sweep timer serves all publishes rather than a timer per publish: the send path
// publishes once per recipient. Every publish gets the same bound, so deadlines come in
// the order publishes start and the sweep only looks at the head of the queue.

export type Publish<A extends unknown[]> = (...args: A) => Promise<void>
/** the publish being bounded, callback style: the send path's fan-out pays no promise per publish */
export type PublishWithCallback<A extends unknown[]> = (args: A, done: (err?: Error | null) => void) => void

export class PublishTimeoutError extends Error {
  constructor (readonly topic: string, ms: number) {
    super(`publish to ${topic} did not settle within ${ms} ms`)
    this.name = 'PublishTimeoutError'
  }
}

interface Pending { deadline: number, topic: string, settled: boolean, done: (err?: Error | null) => void }

export interface BoundedPublish<A extends unknown[]> {
  publish: Publish<A>
  /** the same, callback style: `done` is called exactly once, with an error after the bound */
  publishWithCallback: PublishWithCallback<A>
  /** publishes that gave up waiting so far */
  readonly timedOut: number
  stop(): void
}

export function boundPublish<A extends [string, ...unknown[]]> (publish: PublishWithCallback<A>, ms: number): BoundedPublish<A> {
  let queue: Pending[] = []
  let head = 0
  let timer: NodeJS.Timeout | null = null
  let timedOut = 0

  const sweep = (): void => {
    const now = Date.now()
    while (head < queue.length) {
      const p = queue[head] as Pending
      if (!p.settled) {
        if (p.deadline > now) break
        p.settled = true
        timedOut++
        p.done(new PublishTimeoutError(p.topic, ms))
      }
      head++
    }
    if (head === queue.length) {
      queue = []
      head = 0
      if (timer !== null) clearInterval(timer)
      timer = null
    } else if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head)
      head = 0
    }
  }

  const publishWithCallback = (args: A, done: (err?: Error | null) => void): void => {
    const pending: Pending = { deadline: Date.now() + ms, topic: args[0], settled: false, done }
    queue.push(pending)
    // a quarter of the bound: a publish gives up at most 1.25 × `ms` after it started
    timer ??= setInterval(sweep, Math.max(1, Math.floor(ms / 4))).unref()
    publish(args, (err) => {
      if (pending.settled) return
      pending.settled = true
      done(err)
    })
  }

  return {
    publish: (...args: A) => new Promise<void>((resolve, reject) => {
      publishWithCallback(args, (err) => (err ? reject(err) : resolve()))
    }),
    publishWithCallback,
    get timedOut () { return timedOut },
    stop () {
      if (timer !== null) clearInterval(timer)
      timer = null
    }
  }
}
