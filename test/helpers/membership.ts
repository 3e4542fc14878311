// Watching a membership change take effect on a node from outside, for the tests of
// broker/membership.ts across nodes: REST calls made as a user, and a probe that tells
// when a removed member's old subscription stops receiving a conversation.
import { randomUUID } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import { text } from './fixtures.js'

/** Rejects with `what` when `promise` has not settled within `ms`. */
export async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** client_msg_ids arriving on `topic` from now on; call stop() when done. */
function watch (client: MqttClient, topic: string): { seen: Set<string>, stop: () => void } {
  const seen = new Set<string>()
  const onMessage = (got: string, payload: Buffer): void => {
    if (got !== topic) return
    try {
      const msg = JSON.parse(payload.toString()) as { client_msg_id?: unknown }
      if (typeof msg.client_msg_id === 'string') seen.add(msg.client_msg_id)
    } catch {}
  }
  client.on('message', onMessage)
  return { seen, stop: () => client.off('message', onMessage) }
}

export interface ForwardProbe {
  /** publishes the probes and markers (a member of both conversations) */
  sender: MqttClient
  /** the device of the member removed (or added), subscribed to `conv/<group>/events` and to its inbox */
  watcher: MqttClient
  watcherId: string
  group: string
  /** a conversation sender and watcher stay in: its events on the watcher's inbox are the markers */
  direct: string
  /** give up after this long */
  timeoutMs: number
}

const PROBE_PAUSE_MS = 50

/**
 * Sends a probe into the group, then a marker into the direct conversation, and waits for
 * the marker at the watcher, again and again until the watcher's `conv/<group>/events`
 * subscription gets the probe (`delivered`) or does not (`withheld`). Both travel the
 * same path, in that order, so once the marker is there the probe is there too unless
 * the node withheld it. Answers after how many ms; rejects at timeoutMs.
 */
export async function untilForward (p: ForwardProbe, want: 'delivered' | 'withheld'): Promise<number> {
  const started = Date.now()
  const tag = randomUUID().slice(0, 8)
  const probes = watch(p.watcher, `conv/${p.group}/events`)
  const markers = watch(p.watcher, `user/${p.watcherId}/inbox`)
  try {
    for (let round = 1; ; round++) {
      const elapsed = Date.now() - started
      if (elapsed > p.timeoutMs) throw new Error(`probes on conv/${p.group}/events still not ${want} after ${elapsed} ms (${round - 1} probes)`)
      // fresh ids every call: a client_msg_id sent before is an idempotent retry, not a new event
      const probe = `probe-${tag}-${round}`
      const marker = `marker-${tag}-${round}`
      await p.sender.publishAsync(`conv/${p.group}/send`, text(probe, 'are you still there?'), { qos: 1 })
      await p.sender.publishAsync(`conv/${p.direct}/send`, text(marker, 'marker'), { qos: 1 })
      await within(until(() => markers.seen.has(marker), p.watcher), 5000, `marker ${marker} at the watcher's inbox`)
      if (probes.seen.has(probe) === (want === 'delivered')) return Date.now() - started
      await new Promise(resolve => setTimeout(resolve, PROBE_PAUSE_MS))
    }
  } finally {
    probes.stop()
    markers.stop()
  }
}

/** Resolves once `done()` holds, checked after each message the client receives. */
function until (done: () => boolean, client: MqttClient): Promise<void> {
  if (done()) return Promise.resolve()
  return new Promise((resolve) => {
    const check = (): void => {
      if (!done()) return
      client.off('message', check)
      resolve()
    }
    client.on('message', check)
  })
}
