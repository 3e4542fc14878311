// The open conversation: its messages (paging back on request), marks on own messages,
// the typing indicator, the composer, and read receipts for what the user has seen.
import type { ConversationView, OutboxEntry, ThreadlineClient } from '../sdk/index.js'
import { byId, h, reconcile } from './dom.js'
import { Markers, type Mark, othersIn, timeline, titleOf, type TimelineItem, typingText } from './timeline.js'

const PAGE = 50

const MARKS: Record<Mark, { glyph: string, label: string }> = {
  pending: { glyph: '🕓', label: 'sending' },
  sent: { glyph: '✓', label: 'sent' },
  delivered: { glyph: '✓✓', label: 'delivered' },
  read: { glyph: '✓✓ Seen', label: 'read' },
  failed: { glyph: '!', label: 'not sent' }
}

export class Thread {
  readonly #client: ThreadlineClient
  readonly #markers = new Markers()
  /** every send of this page, by temp id, whatever its status (the SDK's outbox() drops failed ones) */
  readonly #sends = new Map<string, OutboxEntry>()
  readonly #title = byId('conversation-title')
  readonly #list = byId<HTMLOListElement>('messages')
  readonly #older = byId<HTMLButtonElement>('older')
  readonly #typing = byId('typing')
  readonly #composer = byId<HTMLFormElement>('composer')
  readonly #input = byId<HTMLInputElement>('message')
  #view: ConversationView | null = null
  #readUpTo = new Map<string, number>()
  /** the conversation's view, kept fresh by the conversation list */
  onViewNeeded: (convId: string) => ConversationView | undefined = () => undefined

  constructor (client: ThreadlineClient) {
    this.#client = client
    client.on('message', (_m, convId) => { if (convId === this.#view?.id) this.#update() })
    client.on('outbox', (entry) => {
      this.#sends.set(entry.temp_id, entry)
      if (entry.conv_id === this.#view?.id) this.#update()
    })
    client.on('receipts', (summary) => {
      this.#markers.apply(summary)
      if (summary.conv_id === this.#view?.id) this.#update()
    })
    client.on('typing', ({ conv_id: convId }) => { if (convId === this.#view?.id) this.#showTyping() })
    client.on('conversation', (view) => { if (view.id === this.#view?.id) this.#view = view })
    document.addEventListener('visibilitychange', () => this.#markRead())
    this.#older.addEventListener('click', () => { void this.#loadOlder() })
    this.#input.addEventListener('input', () => {
      if (this.#view !== null) client.typing(this.#view.id, this.#input.value !== '')
    })
    this.#input.addEventListener('blur', () => {
      if (this.#view !== null) client.typing(this.#view.id, false)
    })
    // a form with one text box submits on Enter
    this.#composer.addEventListener('submit', (e) => {
      e.preventDefault()
      this.#send()
    })
  }

  async open (view: ConversationView): Promise<void> {
    if (this.#view !== null && this.#view.id !== view.id) this.#client.typing(this.#view.id, false)
    this.#view = view
    this.#title.textContent = titleOf(view, this.#client.userId)
    this.#list.replaceChildren()
    this.#composer.hidden = false
    this.#input.value = ''
    this.#input.focus()
    this.#showTyping()
    const page = await this.#client.history(view.id, { limit: PAGE })
    if (this.#view.id !== view.id) return // another one was opened meanwhile
    this.#older.hidden = !mayHaveOlder(page.map(m => m.seq))
    this.#update({ toBottom: true })
  }

  #send (): void {
    const view = this.#view
    const text = this.#input.value.trim()
    if (view === null || text === '') return
    const entry = this.#client.send(view.id, text)
    this.#sends.set(entry.temp_id, entry)
    this.#input.value = ''
    this.#client.typing(view.id, false)
    this.#update({ toBottom: true })
  }

  async #loadOlder (): Promise<void> {
    const view = this.#view
    if (view === null) return
    const oldest = this.#client.messages(view.id)[0]?.seq
    const before = this.#list.scrollHeight
    const page = await this.#client.history(view.id, oldest !== undefined ? { beforeSeq: oldest, limit: PAGE } : { limit: PAGE })
    if (this.#view?.id !== view.id) return
    this.#older.hidden = page.length === 0 || !mayHaveOlder(page.map(m => m.seq))
    this.#update()
    // keep what the user was looking at in place above the new older messages
    this.#list.scrollTop += this.#list.scrollHeight - before
  }

  #update (opts: { toBottom?: boolean } = {}): void {
    const view = this.#view
    if (view === null) return
    const fresh = this.onViewNeeded(view.id) ?? view
    const atBottom = this.#list.scrollHeight - this.#list.scrollTop - this.#list.clientHeight < 40
    const items = timeline({
      me: this.#client.userId,
      convId: view.id,
      others: othersIn(fresh, this.#client.userId),
      messages: this.#client.messages(view.id),
      outbox: [...this.#sends.values()],
      markers: this.#markers
    })
    const group = fresh.type === 'group'
    reconcile(this.#list, items, (i) => JSON.stringify([i.seq, i.text, i.edited, i.deleted, i.reactions, i.mark, i.error]), (i) => messageElement(i, group))
    if (opts.toBottom === true || atBottom) this.#list.scrollTop = this.#list.scrollHeight
    this.#markRead()
  }

  #showTyping (): void {
    this.#typing.textContent = this.#view !== null ? typingText(this.#client.typingUsers(this.#view.id)) : ''
  }

  /** The user sees the open conversation: everything in it up to its last seq is read. */
  #markRead (): void {
    const view = this.#view
    if (view === null || document.visibilityState !== 'visible') return
    const last = this.#client.messages(view.id).at(-1)?.seq
    if (last === undefined || last <= (this.#readUpTo.get(view.id) ?? 0)) return
    this.#readUpTo.set(view.id, last)
    this.#client.markRead(view.id, last)
  }
}

/** The conversation's first seq is 1: a page reaching it holds the oldest message. */
const mayHaveOlder = (seqs: number[]): boolean => seqs.length > 0 && Math.min(...seqs) > 1

function messageElement (item: TimelineItem, group: boolean): HTMLLIElement {
  const time = item.ts !== null ? new Date(item.ts) : null
  const reactions = Object.entries(item.reactions).filter(([, users]) => users.length > 0)
  return h('li', { class: `msg ${item.own ? 'own' : 'theirs'}${item.deleted ? ' deleted' : ''}`, 'data-seq': item.seq !== null ? String(item.seq) : undefined },
    !item.own && group && h('p', { class: 'who' }, item.sender_id),
    h('p', { class: 'text' }, item.deleted ? 'This message was deleted' : item.text),
    reactions.length > 0 && h('p', { class: 'reactions' }, ...reactions.map(([emoji, users]) =>
      h('span', { class: 'reaction', title: users.join(', ') }, `${emoji} ${users.length}`))),
    h('p', { class: 'meta' },
      item.edited && !item.deleted && h('span', { class: 'edited' }, 'edited'),
      time !== null && h('time', { datetime: item.ts ?? undefined }, time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })),
      item.mark !== null && h('span', { class: 'mark', 'data-status': item.mark, title: item.error ?? MARKS[item.mark].label },
        h('span', { 'aria-hidden': 'true' }, MARKS[item.mark].glyph),
        h('span', { class: 'visually-hidden' }, item.error !== null ? `${MARKS[item.mark].label}: ${item.error}` : MARKS[item.mark].label))))
}
