// Upstream behaviour worked around: Aedes writes each delivery from a setImmediate callback
// of its own (aedes/lib/client.js deliverQoS), and mqtt-packet corks the connection only
// until the next tick (writeToStream.js generate). Node drains the tick queue after every
// immediate callback, so each delivery became a write system call of its own, and so did
// each batch of PUBACKs: ~2 per send, the largest single share of the broker's CPU (the
// kernel's side of loopback TCP, in `writev`), while a recipient of several sends of one
// committed batch could have had them in one.
//
// Here the first cork of a connection in a turn of the event loop also holds the connection
// corked until a setImmediate callback: every packet written to it until then leaves in one
// write. An immediate queued while immediates run waits for the next turn of the loop, so
// a packet waits at most one turn (the sockets' reads of that turn, no timer).
// test/broker/patches/coalesce-writes.test.ts fails if mqtt-packet stops corking this way.
import { Writable } from 'node:stream'

const cork = Writable.prototype.cork
const held = new Set<Writable>()
let flushing: NodeJS.Immediate | null = null

function flush (): void {
  flushing = null
  const conns = [...held]
  held.clear()
  for (const conn of conns) conn.uncork()
}

function holdingCork (this: Writable): void {
  if (!held.has(this)) {
    held.add(this)
    cork.call(this)
    flushing ??= setImmediate(flush)
  }
  cork.call(this)
}

/** Installs the hold on one connection (an own `cork`: no state per connection while it idles). */
export function coalesceWrites (conn: Writable): void {
  if (conn.cork !== cork) throw new Error('the connection\'s cork is not Writable.prototype.cork: broker/patches/coalesce-writes.ts needs an update')
  conn.cork = holdingCork
}
