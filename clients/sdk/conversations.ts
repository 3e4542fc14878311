// The conversation list as this client sees it: the server's views (GET
// /v1/conversations, /v1/sync), kept current between fetches by the events, receipts and
// reads the client handles, so a list on screen needs no polling.
import type { MessageStore } from './messages.js'
import type { ConversationView, EventEnvelope } from './types.js'

/**
 * The server's cap on unread_count (UNREAD_COUNT_MAX in schemas/rest.ts; the SDK bundle
 * takes no server code, and test/clients/sdk/unread-cap.test.ts keeps the two equal): at
 * the cap the count means "this many or more", so events neither raise nor lower it.
 */
export const UNREAD_COUNT_MAX = 999

export interface ConversationListOptions {
  me: string
  messages: MessageStore
  /** the exact unread count when every event above read_seq was seen, else null */
  countUnread (view: ConversationView): number | null
  changed (view: ConversationView): void
}

export class ConversationList {
  readonly #o: ConversationListOptions
  readonly #views = new Map<string, ConversationView>()

  constructor (options: ConversationListOptions) {
    this.#o = options
  }

  has (id: string): boolean {
    return this.#views.has(id)
  }

  ids (): string[] {
    return [...this.#views.keys()]
  }

  get (id: string): ConversationView | undefined {
    const view = this.#views.get(id)
    return view === undefined ? undefined : structuredClone(view)
  }

  delete (id: string): void {
    this.#views.delete(id)
  }

  /** Takes a view from the server; one read before events applied here since keeps what it is behind on. */
  merge (view: ConversationView): void {
    const held = this.#views.get(view.id)
    const next: ConversationView = held !== undefined && held.last_seq > view.last_seq
      ? { ...held, members: view.members, title: view.title, muted_until: view.muted_until }
      : structuredClone(view)
    if (held !== undefined) {
      next.markers = {
        delivered_seq: Math.max(held.markers.delivered_seq, view.markers.delivered_seq),
        read_seq: Math.max(held.markers.read_seq, view.markers.read_seq)
      }
    }
    this.#views.set(view.id, next)
    this.#o.changed(structuredClone(next))
  }

  /** An event released in order: last_seq, the last message, the unread count. */
  applyEvent (e: EventEnvelope): void {
    const view = this.#views.get(e.conv_id)
    // a view read after the event already counts it (a fill releases events the sync that
    // started it had counted)
    if (view === undefined || e.seq <= view.last_seq) return
    const { me, messages } = this.#o
    view.last_seq = e.seq
    if (e.type === 'text') {
      view.last_message = { seq: e.seq, sender_id: e.sender_id, text: e.text ?? '', edited: false, ts: e.ts }
      if (e.sender_id !== me && e.seq > view.markers.read_seq) view.unread_count = Math.min(UNREAD_COUNT_MAX, view.unread_count + 1)
    } else if (e.target_seq !== undefined && e.target_seq === view.last_message?.seq) {
      if (e.type === 'edit') view.last_message = { ...view.last_message, text: e.text ?? '', edited: true }
      if (e.type === 'delete') {
        const before = messages.list(e.conv_id).filter(m => !m.deleted).at(-1)
        view.last_message = before === undefined ? null : { seq: before.seq, sender_id: before.sender_id, text: before.text, edited: before.edited, ts: before.ts }
      }
    }
    if (e.type === 'delete' && e.target_seq !== undefined && e.target_seq > view.markers.read_seq) {
      const target = messages.get(e.conv_id, e.target_seq)
      if (target !== undefined && target.sender_id !== me && view.unread_count < UNREAD_COUNT_MAX) view.unread_count = Math.max(0, view.unread_count - 1)
    }
    this.#o.changed(structuredClone(view))
  }

  /** This user's markers grew (a read here, or a receipt from another of their devices). */
  markers (id: string, markers: { delivered_seq: number, read_seq: number }): void {
    const view = this.#views.get(id)
    if (view === undefined) return
    if (markers.read_seq <= view.markers.read_seq && markers.delivered_seq <= view.markers.delivered_seq) return
    view.markers = {
      delivered_seq: Math.max(view.markers.delivered_seq, markers.delivered_seq, markers.read_seq),
      read_seq: Math.max(view.markers.read_seq, markers.read_seq)
    }
    if (view.markers.read_seq >= view.last_seq) view.unread_count = 0
    else view.unread_count = this.#o.countUnread(view) ?? view.unread_count
    this.#o.changed(structuredClone(view))
  }
}
