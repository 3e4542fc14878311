// The outbox: send() answers at once; the send is retried with the same client_msg_id
// until the server answers it, across a lost acknowledgement, a server restart and an app
// restart, and is stored once; it then follows the receipts to delivered and read; a
// refused send ends failed with its code.
import t from 'tap'
import type { Threadline } from '../../../broker/server.js'
import type { OutboxEntry, OutboxStorage } from '../../../clients/sdk/index.js'
import { createConversation, userId } from '../../helpers/fixtures.js'
import { startNode, token } from '../../helpers/node.js'
import { createDatabase } from '../../helpers/pg-database.js'
import { nextEvent, onlineClient, recordEvents, sdkClient, state } from '../../helpers/sdk.js'
import { startTcpProxy } from '../../helpers/tcp-proxy.js'
import { waitFor } from '../../helpers/wait.js'

interface Stored { seq: number, client_msg_id: string, text?: string }

/** The conversation's events as the server's history has them. */
async function stored (node: Threadline, user: string, conv: string): Promise<Stored[]> {
  const res = await node.app.inject({ method: 'GET', url: `/v1/conversations/${conv}/events?limit=200`, headers: { authorization: `Bearer ${token(node, user)}` } })
  if (res.statusCode !== 200) throw new Error(`history answered ${res.statusCode}: ${res.body}`)
  return (res.json() as { events: Stored[] }).events
}

/** An app's storage: here an array, as an app would keep a file or localStorage. */
class ArrayStorage implements OutboxStorage {
  saved: OutboxEntry[] = []
  async load (): Promise<OutboxEntry[]> { return structuredClone(this.saved) }
  async save (entries: OutboxEntry[]): Promise<void> { this.saved = structuredClone(entries) }
}

t.test('send() returns pending at once, then sent with its seq, delivered and read as the other member\'s receipts arrive', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_RECEIPT_WINDOW_MS: '0' } })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const a = await onlineClient(t, node, alice)
  const b = await onlineClient(t, node, bob)
  t.equal(a.transport, 'mqtt', 'MQTT over WebSocket by default')
  const conv = await a.createConversation({ type: 'direct', members: [bob] })
  const statuses = recordEvents(a, 'outbox')

  const entry = a.send(conv.id, 'hello bob')
  t.match(entry, { status: 'pending', conv_id: conv.id, type: 'text', text: 'hello bob' }, 'pending, at once')
  t.ok(entry.temp_id !== '' && entry.client_msg_id !== '', 'with a temp id and a client_msg_id')
  t.equal(a.outbox().length, 1, 'the outbox holds it')

  const [event] = await nextEvent(b, 'event', e => e.client_msg_id === entry.client_msg_id)
  await nextEvent(a, 'outbox', e => e.temp_id === entry.temp_id && e.status === 'delivered')
  const read = nextEvent(a, 'outbox', e => e.temp_id === entry.temp_id && e.status === 'read')
  await b.markRead(conv.id, event.seq)
  t.pass('markRead() resolves once the server has the receipt')
  const [readEntry] = await read

  const mine = statuses.got.map(([e]) => e).filter(e => e.temp_id === entry.temp_id)
  t.same(mine.map(e => e.status), ['pending', 'sent', 'delivered', 'read'], 'each status once, in order')
  t.equal(mine[1]!.seq, event.seq, 'sent carries the seq the server gave it')
  t.equal(readEntry.seq, event.seq)
  t.same(a.outbox(), [], 'a read entry leaves the outbox')
  t.same((await stored(node, alice, conv.id)).map(e => e.text), ['hello bob'], 'stored once')
})

for (const transport of ['mqtt', 'longpoll'] as const) {
  t.test(`over ${transport}, a send the server refuses ends failed with its code, and later sends go on`, async (t) => {
    const node = await startNode(t)
    const [alice, bob, carol] = [userId('alice'), userId('bob'), userId('carol')]
    const theirs = await createConversation(node, [bob, carol])
    const ours = await createConversation(node, [alice, bob])
    const a = await onlineClient(t, node, alice, { transport })
    t.equal(a.transport, transport)

    const outbox = recordEvents(a, 'outbox')
    const notMine = a.send(theirs, 'let me in')
    const tooLong = a.send(ours, 'x'.repeat(4001))
    const fine = a.send(ours, 'this one is fine')
    await outbox.until(6) // three pending, three answers
    const final = (temp: string): OutboxEntry => outbox.got.map(([e]) => e).filter(e => e.temp_id === temp).at(-1)!
    const [failed1, failed2, sent] = [final(notMine.temp_id), final(tooLong.temp_id), final(fine.temp_id)]
    t.same([failed1.status, failed2.status, sent.status], ['failed', 'failed', 'sent'])
    t.equal(failed1.error?.code, 'not_member', 'not a member: not_member')
    t.equal(failed2.error?.code, 'too_large', 'over 4000 code points: too_large')
    t.equal(sent.seq, 1, 'the next send is stored, as the first event')
    t.same(a.outbox().filter(e => e.status === 'failed').map(e => e.temp_id).sort(), [notMine.temp_id, tooLong.temp_id].sort(), 'failed entries stay listed for the app to show')
    // the same answers for a script that awaits them
    await t.rejects(a.sent(notMine.temp_id), { name: 'ThreadlineSendError', code: 'not_member' }, 'sent() rejects with the code')
    t.match(await a.sent(fine.temp_id), { status: 'sent', seq: 1 }, 'sent() resolves with the stored entry')
    const next = a.send(ours, 'awaited')
    t.match(await a.sent(next.temp_id), { status: 'sent', seq: 2 }, 'also when awaited before the answer')
  })
}

t.test('a send stored while its acknowledgement was lost is resent after a server restart and stored once', async (t) => {
  const db = await createDatabase()
  t.teardown(db.drop)
  const first = await startNode(t, { databaseUrl: db.url })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(first, [alice, bob])
  const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: first.mqttPort })
  const a = await onlineClient(t, first, alice, { transport: 'mqtt', mqttUrl: `mqtt://127.0.0.1:${proxy.port}` })

  proxy.holdReplies() // the PUBACK and the event never reach alice
  const entry = a.send(conv, 'across the restart')
  await waitFor(async () => (await stored(first, alice, conv)).length === 1, 'the send to be stored')
  t.equal(a.outbox()[0]?.status, 'pending', 'stored, but the client has heard nothing back')

  await first.close()
  const second = await startNode(t, {
    databaseUrl: db.url,
    env: { THREADLINE_MQTT_PORT: String(first.mqttPort), THREADLINE_HTTP_PORT: String(first.httpPort) }
  })
  proxy.resume()
  const [sent] = await nextEvent(a, 'outbox', e => e.temp_id === entry.temp_id && e.status === 'sent', 20_000)

  const events = await stored(second, alice, conv)
  t.same(events.map(e => e.client_msg_id), [entry.client_msg_id], 'one event: the resend was recognised, not stored again')
  t.equal(sent.seq, events[0]!.seq, 'the client learned the seq of the stored one')
})

t.test('an outbox persisted by the app is reloaded by a new client and resent, with no duplicate', async (t) => {
  const node = await startNode(t)
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const storage = new ArrayStorage()
  const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: node.mqttPort })
  const before = await onlineClient(t, node, alice, { transport: 'mqtt', mqttUrl: `mqtt://127.0.0.1:${proxy.port}`, outboxStorage: storage })

  proxy.holdReplies()
  const stuck = before.send(conv, 'stored before the app quit')
  await waitFor(async () => (await stored(node, alice, conv)).length === 1, 'the first send to be stored')
  proxy.cut()
  await state(before, 'offline')
  const neverSent = before.send(conv, 'never left the device')
  await before.close()
  t.same(storage.saved.map(e => [e.temp_id, e.status]), [[stuck.temp_id, 'pending'], [neverSent.temp_id, 'pending']], 'the app\'s storage holds both, pending')

  // the app starts again: a new client on the same storage and device
  const after = sdkClient(t, node, alice, { outboxStorage: storage })
  const reports = recordEvents(after, 'outbox')
  await after.connect()
  t.same(reports.got.slice(0, 2).map(([e]) => [e.temp_id, e.status]), [[stuck.temp_id, 'pending'], [neverSent.temp_id, 'pending']], 'connect() reports the reloaded entries')
  await reports.until(4)
  const done = reports.got.map(([e]) => e).filter(e => e.status === 'sent')
  t.same(done.map(e => e.temp_id), [stuck.temp_id, neverSent.temp_id], 'both are sent, in order, under their old temp ids')

  const events = await stored(node, alice, conv)
  t.same(events.map(e => e.client_msg_id), [stuck.client_msg_id, neverSent.client_msg_id], 'each stored once')
  t.same(done.map(e => e.seq), events.map(e => e.seq), 'with the seqs the server has')
  await waitFor(() => storage.saved.length === 0, 'the storage to be emptied')
})
