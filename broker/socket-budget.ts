// The hard bound on open sockets of the MQTT and HTTP ports together. CONNACK 3 (the
// connection gate) refuses clients that got as far as a CONNECT; a socket that never
// sends one holds a file until the CONNECT timeout, so a flood of bare TCP connects is
// stopped here instead: past the budget a new socket is closed the moment it is accepted,
// and the process never runs out of files.
import type { Socket } from 'node:net'
import type { Telemetry } from '../core/telemetry.js'
import { LogThrottle } from './log-throttle.js'
import { connectionClosed } from './lifecycle.js'
import type { Logger } from './logger.js'

export class SocketBudget {
  #open = 0
  readonly #warnings = new LogThrottle()
  /** every socket's 'close' listener: the count, and the MQTT client on it if any (lifecycle.ts) */
  readonly #closed: (this: Socket) => void

  constructor (readonly max: number, private readonly telemetry: Telemetry, private readonly log: Logger) {
    const budget = this
    this.#closed = function (this: Socket): void {
      budget.#open--
      connectionClosed(this)
    }
  }

  get open (): number { return this.#open }

  /**
   * The listen backlog of the ports this budget counts: room for every socket it would
   * admit, as HAProxy sizes its backlog from maxconn. Node's default of 511 overflows in a
   * reconnect storm while the event loop is busy with the CONNECTs before it; the kernel
   * then drops the handshakes past it, or answers them with SYN cookies that can fail
   * later, and those clients see ECONNRESET with nothing in the node's logs or metrics.
   * Linux caps it at net.core.somaxconn (docs/operations.md).
   */
  get backlog (): number { return this.max }

  /** Counts `socket` until it closes; false (and the socket destroyed) past the budget. */
  admit (socket: Socket): boolean {
    if (this.#open >= this.max) {
      socket.destroy()
      this.#refuse(socket.remoteAddress)
      return false
    }
    this.#open++
    // 'close' comes once: one shared listener, not a closure and a once-wrapper per socket
    socket.on('close', this.#closed)
    return true
  }

  #refuse (address: string | undefined): void {
    this.telemetry.emit('connectionRefused', { reason: 'max_sockets' })
    const refused = this.#warnings.hit()
    if (refused === null) return
    this.log.warn({ reason: 'max_sockets', max: this.max, refused, address }, 'sockets refused: too many open on the MQTT and HTTP ports')
  }
}
