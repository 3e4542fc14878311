// The conversation list: newest activity first, unread counts, a presence dot for the
// other member of each direct conversation, and the form that starts a conversation.
import type { ConversationView, ThreadlineClient } from '../sdk/index.js'
import { byId, h, reconcile } from './dom.js'
import { othersIn, titleOf } from './timeline.js'

const USER_ID = /^[A-Za-z0-9_.-]{1,64}$/

export class Sidebar {
  readonly #client: ThreadlineClient
  readonly #onOpen: (view: ConversationView) => void
  readonly #views = new Map<string, ConversationView>()
  readonly #list = byId<HTMLUListElement>('conversations')
  readonly #empty = byId('no-conversations')
  readonly #form = byId<HTMLFormElement>('new-conversation')
  readonly #with = byId<HTMLInputElement>('new-with')
  #openId: string | null = null
  #reloading: Promise<void> | null = null

  constructor (client: ThreadlineClient, onOpen: (view: ConversationView) => void) {
    this.#client = client
    this.#onOpen = onOpen
    client.on('conversation', (view) => {
      this.#views.set(view.id, view)
      this.#render()
    })
    client.on('presence', () => this.#render())
    // added to a conversation (or removed): the list as the server has it now
    client.on('membership', () => { void this.load() })
    this.#list.addEventListener('click', (e) => {
      const button = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-conv]')
      const view = button !== null ? this.#views.get(button.dataset.conv ?? '') : undefined
      if (view !== undefined) this.open(view)
    })
    this.#form.addEventListener('submit', (e) => {
      e.preventDefault()
      void this.#start()
    })
  }

  view (convId: string): ConversationView | undefined {
    return this.#views.get(convId)
  }

  /** (Re)loads the list from the server; calls made while one runs share it. */
  load (): Promise<void> {
    this.#reloading ??= (async () => {
      try {
        const views = await this.#client.conversations()
        this.#views.clear()
        for (const v of views) this.#views.set(v.id, v)
        const watched = views.filter(v => v.type === 'direct').flatMap(v => othersIn(v, this.#client.userId))
        if (watched.length > 0) this.#client.watchPresence(watched)
        this.#render()
      } finally {
        this.#reloading = null
      }
    })()
    return this.#reloading
  }

  open (view: ConversationView): void {
    this.#openId = view.id
    this.#render()
    this.#onOpen(view)
  }

  async #start (): Promise<void> {
    const members = this.#with.value.split(',').map(s => s.trim()).filter(s => s !== '')
    const bad = members.find(m => !USER_ID.test(m))
    if (members.length === 0 || bad !== undefined) {
      this.#with.setCustomValidity(`${bad ?? 'A user id'} is not a user id (1–64 letters, digits, _ . -)`)
      this.#with.reportValidity()
      return
    }
    this.#with.setCustomValidity('')
    const conv = await this.#client.createConversation(members.length === 1
      ? { type: 'direct', members }
      : { type: 'group', title: [this.#client.userId, ...members].join(', '), members })
    this.#with.value = ''
    await this.load()
    const view = this.#views.get(conv.id)
    if (view !== undefined) this.open(view)
  }

  #render (): void {
    const me = this.#client.userId
    const views = [...this.#views.values()].sort((a, b) => activity(b).localeCompare(activity(a)))
    this.#empty.hidden = views.length > 0
    // the tab's title counts what waits elsewhere, as chat apps do
    const waiting = views.reduce((n, v) => n + (v.id === this.#openId ? 0 : v.unread_count), 0)
    document.title = waiting > 0 ? `(${waiting}) Threadline` : 'Threadline'
    const items = views.map(v => {
      const other = v.type === 'direct' ? othersIn(v, me)[0] : undefined
      const presence = other !== undefined ? this.#client.presenceOf(other)?.state ?? 'unknown' : null
      return { key: v.id, view: v, presence, open: v.id === this.#openId }
    })
    reconcile(this.#list, items,
      (i) => JSON.stringify([i.view.title, i.view.members.length, i.view.unread_count, i.view.last_message?.seq, i.view.last_message?.text, i.presence, i.open]),
      ({ view, presence, open }) => {
        const unread = open ? 0 : view.unread_count
        return h('li', {},
          h('button', { type: 'button', 'data-conv': view.id, 'aria-current': open ? 'true' : undefined },
            presence !== null && h('span', { class: 'presence', 'data-state': presence, role: 'img', 'aria-label': presence === 'unknown' ? 'presence unknown' : presence }),
            h('span', { class: 'name' }, titleOf(view, me)),
            unread > 0 && h('span', { class: 'unread' }, String(unread), h('span', { class: 'visually-hidden' }, ' unread')),
            h('span', { class: 'preview' }, view.last_message !== null ? `${view.last_message.sender_id === me ? 'You: ' : ''}${view.last_message.text}` : 'No messages yet')))
      })
  }
}

/** what orders the list: the last message's time, else when the conversation began */
const activity = (v: ConversationView): string => v.last_message?.ts ?? v.created_at
