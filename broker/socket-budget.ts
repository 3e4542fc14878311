// The hard bound on open sockets of the MQTT and HTTP ports together. CONNACK 3 (the
// connection gate) refuses clients that got as far as a CONNECT; a socket that never
// sends one holds a file until the CONNECT timeout, so a flood of bare TCP connects is
// stopped here instead: past the budget a new socket is closed the moment it is accepted,
// and the process never runs out of files.
import type { Socket } from 'node:net'
import type { Telemetry } from '../core/telemetry.js'
import type { Logger } from './logger.js'

/** at most one warning per this long while sockets are being refused */
const WARN_EVERY_MS = 10_000

export class SocketBudget {
  #open = 0
  #refused = 0
  #warnedAt = -Infinity

  constructor (readonly max: number, private readonly telemetry: Telemetry, private readonly log: Logger) {}

  get open (): number { return this.#open }

  /** Counts `socket` until it closes; false (and the socket destroyed) past the budget. */
  admit (socket: Socket): boolean {
    if (this.#open >= this.max) {
      socket.destroy()
      this.#refuse(socket.remoteAddress)
      return false
    }
    this.#open++
    socket.once('close', () => { this.#open-- })
    return true
  }

  #refuse (address: string | undefined): void {
    this.#refused++
    this.telemetry.emit('connectionRefused', { reason: 'max_sockets' })
    // one line per socket would let a flood fill the log: a count every 10 s instead
    const now = Date.now()
    if (now - this.#warnedAt < WARN_EVERY_MS) return
    this.log.warn({ reason: 'max_sockets', max: this.max, refused: this.#refused, address }, 'sockets refused: too many open on the MQTT and HTTP ports')
    this.#warnedAt = now
    this.#refused = 0
  }
}
