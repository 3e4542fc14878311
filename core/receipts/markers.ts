// The marker rules of DESIGN.md §4 "Receipts are markers": per (conversation, member) a
// delivered_seq and a read_seq that only grow (max wins, so a stale or replayed receipt
// changes nothing, in any order, on any node), and reading implies delivery.
import type { ReceiptStatus } from '../../schemas/index.js'

export interface Markers {
  readonly delivered: number
  readonly read: number
}

export const NO_MARKERS: Markers = Object.freeze({ delivered: 0, read: 0 })

/** What one receipt asks for: read implies delivered. */
export function receiptMarkers (status: ReceiptStatus, seq: number): Markers {
  return status === 'read' ? { delivered: seq, read: seq } : { delivered: seq, read: 0 }
}

/** A member's markers waiting in the coalescer: its own object, raised in place as receipts come. */
export interface PendingMarkers {
  delivered: number
  read: number
}

/** Applies one receipt to waiting markers in place (no allocation per receipt): max wins, read implies delivered. */
export function raiseMarkers (m: PendingMarkers, status: ReceiptStatus, seq: number): void {
  if (status === 'read' && seq > m.read) m.read = seq
  if (seq > m.delivered) m.delivered = seq
}

/** Max wins, field by field; keeps delivered ≥ read. */
export function mergeMarkers (a: Markers, b: Markers): Markers {
  const read = Math.max(a.read, b.read)
  return { delivered: Math.max(a.delivered, b.delivered, read), read }
}

/** true when `next` moves either marker of `current` forward. */
export function advances (current: Markers, next: Markers): boolean {
  return next.delivered > current.delivered || next.read > current.read
}
