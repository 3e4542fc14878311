// Aedes reads the retained messages matching every topic a client subscribes to
// (lib/handlers/subscribe.js: persistence.createRetainedStreamCombi(topics)), and both
// persistences answer by walking every retained message there is: the memory one loops
// over its whole map, the Redis one scans its whole hash. Threadline retains one
// presence/<u> per online user, so with N users online every SUBSCRIBE cost O(N) and a
// reconnect storm of N devices O(N²) (bench connections: broker CPU per session 1.3 ms
// at 10,000 sessions, 2.3 ms at 19,000).
// Nothing under user/ or conv/ is ever retained: clients' packets to the chat namespaces
// are never stored or routed (drop-raw-chat-packets.ts) and the plugins' own publishes
// there are not retained. So a filter whose first level is literally `user` or `conv`
// (the inbox every device subscribes to) can match nothing, and is not looked up.
import { Readable } from 'node:stream'

interface RetainedSource { createRetainedStreamCombi(patterns: string[]): Readable }

/** first levels under which nothing is ever retained */
const NEVER_RETAINED = new Set(['user', 'conv'])

const mayMatchRetained = (filter: string): boolean => {
  const slash = filter.indexOf('/')
  return !NEVER_RETAINED.has(slash < 0 ? filter : filter.slice(0, slash))
}

export function skipChatRetainedLookups (persistence: RetainedSource): void {
  const create = persistence.createRetainedStreamCombi.bind(persistence)
  persistence.createRetainedStreamCombi = (patterns) => {
    const wanted = patterns.filter(mayMatchRetained)
    return wanted.length > 0 ? create(wanted) : Readable.from([])
  }
}
