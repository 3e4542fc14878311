// `threadline chat <conv_id>`: the conversation's last messages, then every line typed is
// sent and everything that arrives is shown: new messages, edits, deletes and reactions
// (the message again, marked ~), read marks of the others, typing, presence. Messages shown
// are marked read. Works the same with a terminal or a pipe (`printf 'hi\n' | threadline
// chat …`): at the end of input it waits for every line to be stored, then leaves.
import { createInterface, emitKeypressEvents, type Interface } from 'node:readline'
import type { Message, OutboxEntry, PresenceChange, ReceiptsSummary, TypingChange } from '../../sdk/index.js'
import { CliError } from '../errors.js'
import { conversationName, messageLine, safeText } from '../format.js'
import { findConversation, type Session } from '../session.js'
import { interrupted, within } from '../wait.js'

export interface ChatOptions { limit: number }

class ChatView {
  readonly #printed = new Set<number>()
  readonly #readSeqs = new Map<string, number>()
  readonly #typing = new Set<string>()
  readonly #presence = new Map<string, string>()
  #readUpTo = 0
  /** set once input is read: lines then go above the prompt */
  rl: Interface | undefined
  failed = 0

  constructor (private readonly session: Session, private readonly convId: string) {}

  /** A line above the prompt, which is drawn again with what was typed so far. */
  line (text: string): void {
    const { io } = this.session
    const tty = io.stdin.isTTY === true && this.rl !== undefined
    if (tty) io.stdout.write('\r\x1b[K')
    io.out(text)
    if (tty) this.rl?.prompt(true)
  }

  /** Shows a message the first time, marked ~ when it changes later; `onlyNew` skips changes. */
  message (m: Message, onlyNew = false): void {
    if (m.conv_id !== this.convId || (onlyNew && this.#printed.has(m.seq))) return
    this.line(`${this.#printed.has(m.seq) ? '~ ' : ''}${messageLine(m)}`)
    this.#printed.add(m.seq)
    const { client, config } = this.session
    if (m.sender_id !== config.userId) this.#typing.delete(m.sender_id)
    // shown is seen: the sender's ✓✓ turns to read
    if (m.seq > this.#readUpTo) {
      this.#readUpTo = m.seq
      void client.markRead(this.convId, m.seq)
    }
  }

  receipts (r: ReceiptsSummary): void {
    if (r.conv_id !== this.convId) return
    for (const m of r.markers) {
      if (m.user_id === this.session.config.userId || m.read_seq <= (this.#readSeqs.get(m.user_id) ?? 0)) continue
      this.#readSeqs.set(m.user_id, m.read_seq)
      this.line(`· ${m.user_id} read up to #${m.read_seq}`)
    }
  }

  typing (t: TypingChange): void {
    if (t.conv_id !== this.convId || t.user_id === this.session.config.userId) return
    if (t.typing && !this.#typing.has(t.user_id)) this.line(`· ${t.user_id} is typing…`)
    if (t.typing) this.#typing.add(t.user_id)
    else this.#typing.delete(t.user_id)
  }

  /** Changes only: the state asked for at the start and the retained one that follows are one. */
  presence (p: PresenceChange): void {
    if (p.user_id === this.session.config.userId || this.#presence.get(p.user_id) === p.state) return
    this.#presence.set(p.user_id, p.state)
    this.line(`· ${p.user_id} is ${p.state}`)
  }

  outbox (e: OutboxEntry): void {
    if (e.conv_id !== this.convId || e.status !== 'failed') return
    this.failed++
    this.line(`! not sent: "${safeText(e.text ?? '')}" (${e.error?.code ?? 'unknown'}: ${e.error?.message ?? ''})`)
  }
}

/** Sends each line read until the input ends (Ctrl-D, the end of a pipe, /quit, Ctrl-C). */
function readLines (session: Session, convId: string, view: ChatView): { ended: Promise<void>, sent: Array<Promise<unknown>> } {
  const { client, io } = session
  const tty = io.stdin.isTTY === true
  // created with its listeners in one go: lines already waiting in a pipe are read at once
  const rl = createInterface({ input: io.stdin, output: io.stdout, terminal: tty, prompt: '> ' })
  view.rl = rl
  const sent: Array<Promise<unknown>> = []
  const ended = new Promise<void>(resolve => rl.on('close', resolve))
  rl.on('line', line => {
    const text = line.trim()
    if (text === '/quit') return rl.close()
    // send() also ends this user's typing indicator
    // a refusal is shown by the 'outbox' listener, and counted there
    if (text !== '') sent.push(client.sent(client.send(convId, text).temp_id).catch(() => null))
    if (tty) rl.prompt()
  })
  if (tty) {
    // a terminal in raw mode turns Ctrl-C into this event, not a signal
    rl.on('SIGINT', () => rl.close())
    // typing… while keys are pressed (the SDK throttles what it publishes)
    emitKeypressEvents(io.stdin, rl)
    io.stdin.on('keypress', () => { if (rl.line !== '') client.typing(convId, true) })
    rl.prompt()
  }
  return { ended, sent }
}

export async function chat (session: Session, convId: string, opts: ChatOptions): Promise<void> {
  const { client, config, io } = session
  const conversation = await findConversation(session, convId)
  const view = new ChatView(session, convId)
  io.note(`${conversationName(conversation, config.userId)} (${conversation.type}) · type a message and press Enter · Ctrl-D or /quit leaves`)

  for (const m of opts.limit > 0 ? await client.history(convId, { limit: opts.limit }) : []) view.message(m)
  // what arrived while the history loaded is in the client already
  for (const m of client.messages(convId)) view.message(m, true)
  client.on('message', m => view.message(m))
  client.on('receipts', r => view.receipts(r))
  client.on('typing', t => view.typing(t))
  client.on('presence', p => view.presence(p))
  client.on('outbox', e => view.outbox(e))
  client.watchPresence(conversation.members.map(m => m.user_id).filter(u => u !== config.userId))

  const { ended, sent } = readLines(session, convId, view)
  const how = await Promise.race([ended.then(() => 'end' as const), interrupted()])
  view.rl?.close()
  if (how === 'end' && sent.length > 0) {
    await within(Promise.all(sent), config.timeoutMs, () => new CliError(`some messages were not acknowledged within ${config.timeoutMs / 1000} s`))
  }
  if (view.failed > 0) throw new CliError(`the server refused ${view.failed} of your messages (shown above)`)
}
