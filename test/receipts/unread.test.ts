// Unread counts (DESIGN.md §6 GET /v1/conversations: "text events from others with seq
// above the own read_seq, not deleted"; §4: "a user's own read marker reaches all of that
// user's devices, so unread counts agree everywhere").
import t from 'tap'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { connectUser, startNode, token } from '../helpers/node.js'
import { createConversation, userId } from '../helpers/fixtures.js'
import { sendText } from '../helpers/access.js'
import { waitFor } from '../helpers/wait.js'
import { latestMarker, publishReceipt, receiptsOn, receiptsSettled } from './helpers.js'

const WINDOW = { THREADLINE_RECEIPT_WINDOW_MS: '50' }

async function unread (node: Threadline, user: string, conv: string): Promise<{ list: number, details: number }> {
  const headers = { authorization: `Bearer ${token(node, user)}` }
  const list = await node.app.inject({ method: 'GET', url: '/v1/conversations', headers })
  const details = await node.app.inject({ method: 'GET', url: `/v1/conversations/${conv}`, headers })
  const item = (list.json() as { conversations: Array<{ id: string, unread_count: number }> }).conversations.find(c => c.id === conv)
  return { list: item?.unread_count ?? -1, details: (details.json() as { unread_count: number }).unread_count }
}

const send = (client: MqttClient, conv: string, body: object): Promise<unknown> =>
  client.publishAsync(`conv/${conv}/send`, JSON.stringify(body), { qos: 1 })

t.test('three devices of one user agree on the unread count after reads on one of them', async (t) => {
  const node = await startNode(t, { env: WINDOW })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  const devices = await Promise.all(['phone', 'laptop', 'tablet'].map(async (d) => {
    const c = await connectUser(t, node, bob, d)
    await c.subscribeAsync(`user/${bob}/inbox`, { qos: 1 })
    return { client: c, seen: receiptsOn(c, `user/${bob}/inbox`) }
  }))
  for (let i = 1; i <= 5; i++) await sendText(a, conv, `m${i}`)
  t.same(await unread(node, bob, conv), { list: 5, details: 5 })

  await publishReceipt((devices[0] as { client: MqttClient }).client, conv, 'read', 3)
  await receiptsSettled(node)
  for (const [i, d] of devices.entries()) {
    await waitFor(() => latestMarker(d.seen, bob)?.read_seq === 3, `device ${i} to learn bob's read marker`)
    t.same(latestMarker(d.seen, bob), { delivered_seq: 3, read_seq: 3 }, `device ${i}: read up to 3`)
  }
  t.same(await unread(node, bob, conv), { list: 2, details: 2 }, 'and the server counts the same: 5 − 3')

  await publishReceipt((devices[2] as { client: MqttClient }).client, conv, 'read', 5)
  await receiptsSettled(node)
  for (const [i, d] of devices.entries()) await waitFor(() => latestMarker(d.seen, bob)?.read_seq === 5, `device ${i} to learn the read on another device`)
  t.same(await unread(node, bob, conv), { list: 0, details: 0 })
})

t.test('own messages, reactions, edits and deleted messages never count as unread', async (t) => {
  const node = await startNode(t, { env: WINDOW })
  const [alice, bob] = [userId('alice'), userId('bob')]
  const conv = await createConversation(node, [alice, bob])
  const a = await connectUser(t, node, alice, 'phone')
  const b = await connectUser(t, node, bob, 'phone')
  await sendText(a, conv, 'a1') // 1
  await sendText(a, conv, 'a2') // 2
  await sendText(b, conv, 'b3') // 3: bob's own
  await send(a, conv, { client_msg_id: 'r4', type: 'reaction', target_seq: 3, emoji: '👍' }) // 4
  await send(a, conv, { client_msg_id: 'e5', type: 'edit', target_seq: 1, text: 'a1, edited' }) // 5
  await send(a, conv, { client_msg_id: 'd6', type: 'delete', target_seq: 2 }) // 6
  await sendText(a, conv, 'a7') // 7
  t.same(await unread(node, bob, conv), { list: 2, details: 2 }, '1 and 7: not bob\'s own 3, not the deleted 2, not 4–6')
  t.same(await unread(node, alice, conv), { list: 1, details: 1 }, 'alice: bob\'s 3 only')

  await publishReceipt(b, conv, 'read', 1)
  await receiptsSettled(node)
  t.same(await unread(node, bob, conv), { list: 1, details: 1 })
  await publishReceipt(b, conv, 'read', 7)
  await receiptsSettled(node)
  t.same(await unread(node, bob, conv), { list: 0, details: 0 })

  // after the read marker: a reaction, an edit, and a message deleted before it was read
  await send(a, conv, { client_msg_id: 'r8', type: 'reaction', target_seq: 7, emoji: '🎉' }) // 8
  await send(a, conv, { client_msg_id: 'e9', type: 'edit', target_seq: 7, text: 'a7, edited' }) // 9
  await sendText(a, conv, 'a10') // 10
  t.same(await unread(node, bob, conv), { list: 1, details: 1 })
  await send(a, conv, { client_msg_id: 'd11', type: 'delete', target_seq: 10 }) // 11
  t.same(await unread(node, bob, conv), { list: 0, details: 0 }, 'nothing unread is left to read')
})
