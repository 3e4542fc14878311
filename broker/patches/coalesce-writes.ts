// Upstream behaviour worked around: Aedes writes each delivery from a setImmediate callback
// of its own (aedes/lib/client.js deliverQoS), and mqtt-packet corks the connection only
// until the next tick (writeToStream.js generate). Node drains the tick queue after every
// immediate callback, so each delivery became a write system call of its own, and so did
// each batch of PUBACKs: ~2 per send, the largest single share of the broker's CPU (the
// kernel's side of loopback TCP, in `writev`), while a recipient of several sends of one
// committed batch could have had them in one.
//
// Here a connection's first write of a turn of the event loop goes out as before, and the
// ones after it in the same turn are held corked until a setImmediate callback queued with
// that first write: they leave together, in one write. A connection written once per turn
// (a group's fan-out reaches each member once) waits for nothing; one that several sends of
// a batch reach makes two writes instead of one per send. An immediate queued while
// immediates run waits for the next turn of the loop, so a packet waits at most one turn
// (the sockets' reads of that turn; no timer).
// test/broker/patches/coalesce-writes.test.ts fails if mqtt-packet stops corking this way.
import { Writable } from 'node:stream'

const cork = Writable.prototype.cork
/** connections written to in this turn, and those of them held corked until it ends */
const written = new Set<Writable>()
const held = new Set<Writable>()
let turnEnd: NodeJS.Immediate | null = null

function endTurn (): void {
  turnEnd = null
  written.clear()
  const conns = [...held]
  held.clear()
  for (const conn of conns) conn.uncork()
}

function holdingCork (this: Writable): void {
  if (!written.has(this)) {
    written.add(this)
    turnEnd ??= setImmediate(endTurn)
  } else if (!held.has(this)) {
    held.add(this)
    cork.call(this)
  }
  cork.call(this)
}

/** Installs the hold on one connection (an own `cork`: no state per connection while it idles). */
export function coalesceWrites (conn: Writable): void {
  if (conn.cork !== cork) throw new Error('the connection\'s cork is not Writable.prototype.cork: broker/patches/coalesce-writes.ts needs an update')
  conn.cork = holdingCork
}
