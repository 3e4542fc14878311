// "A user can never take over another user's session" (DESIGN.md §2): a refused CONNECT
// with a live session's clientId must leave that session connected.
import t, { type Test } from 'tap'
import type { MqttClient } from 'mqtt'
import { createSigner } from 'fast-jwt'
import { startNode, connectUser, token, TEST_SECRET } from '../helpers/node.js'
import { connackRefusal, connectRaw, createConversation, nextMessage, rawConnack, sendText, suback, tcpUrl } from '../helpers/access.js'

const node = await startNode(t)
const url = tcpUrl(node)

/** bob:x, persistent, on his inbox; `dropped()` tells whether his connection ever closed. */
async function liveBob (t: Test): Promise<{ bob: MqttClient, dropped: () => boolean }> {
  const bob = await connectUser(t, node, 'bob', 'x', { clean: false })
  t.same(await suback(bob, 'user/bob/inbox'), [1])
  let wasClosed = false
  bob.on('close', () => { wasClosed = true })
  return { bob, dropped: () => wasClosed }
}

/** Proves bob's session still delivers: alice sends in their conversation, bob receives it. */
async function stillDelivers (t: Test, bob: MqttClient, clientMsgId: string): Promise<void> {
  const convId = await createConversation(node, ['alice', 'bob'])
  const alice = await connectUser(t, node, 'alice', 'phone')
  const got = nextMessage(bob, 'user/bob/inbox')
  await sendText(alice, convId, clientMsgId)
  t.match(await got, { t: 'event', conv_id: convId, sender_id: 'alice', client_msg_id: clientMsgId })
}

t.test('alice\'s token with bob\'s clientId is refused and bob stays connected', async (t) => {
  const { bob, dropped } = await liveBob(t)
  const code = await connackRefusal(t, url, { clientId: 'bob:x', username: 'alice', password: token(node, 'alice') })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
  const code2 = await connackRefusal(t, url, { clientId: 'bob:x', username: 'bob', password: token(node, 'alice') })
  t.ok(code2 === 4 || code2 === 5, `claiming to be bob: CONNACK ${code2}`)
  await stillDelivers(t, bob, 'takeover-1')
  t.ok(bob.connected)
  t.notOk(dropped(), 'bob\'s connection never closed')
})

t.test('an expired token for a live clientId is refused and does not take the session over', async (t) => {
  const { bob, dropped } = await liveBob(t)
  const expired = createSigner({ key: TEST_SECRET })({ sub: 'bob', exp: Math.floor(Date.now() / 1000) - 60 })
  const code = await connackRefusal(t, url, { clientId: 'bob:x', username: 'bob', password: expired, clean: false })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
  await stillDelivers(t, bob, 'takeover-2')
  t.notOk(dropped(), 'bob\'s connection never closed')
})

t.test('an empty clientId with clean=false is refused with CONNACK 2', async (t) => {
  // [MQTT-3.1.3-8]
  // (MQTT.js won't send such a CONNECT, so it is written by hand)
  const code = await rawConnack(node.mqttPort, { clientId: '', clean: false, username: 'alice', password: token(node, 'alice') })
  t.equal(code, 2)
  t.equal(await rawConnack(node.mqttPort, { clientId: '', clean: true, username: 'alice', password: token(node, 'alice') }), 5,
    'with clean=true the same CONNECT fails only the clientId rule')
})

t.test('without credentials the default policy (none) refuses the connection', async (t) => {
  t.equal(node.config.openTopics, 'none')
  const code = await connackRefusal(t, url, { clientId: 'anon-1' })
  t.ok(code === 4 || code === 5, `CONNACK ${code}`)
})

t.test('under THREADLINE_OPEN_TOPICS=anonymous', async (t) => {
  const open = await startNode(t, { env: { THREADLINE_OPEN_TOPICS: 'anonymous' } })
  const openUrl = tcpUrl(open)

  t.test('a client without credentials connects', async (t) => {
    const client = await connectRaw(t, openUrl, { clientId: 'anon-1' })
    t.ok(client.connected)
  })

  t.test('an anonymous clientId containing ":" is refused and the user\'s session stays', async (t) => {
    const bob = await connectUser(t, open, 'bob', 'x', { clean: false })
    let dropped = false
    bob.on('close', () => { dropped = true })
    const code = await connackRefusal(t, openUrl, { clientId: 'bob:x' })
    t.equal(code, 2, 'identifier rejected')
    const other = await connackRefusal(t, openUrl, { clientId: 'nobody:x', clean: false })
    t.equal(other, 2, 'any clientId with ":" is reserved, taken or not')
    t.same(await suback(bob, 'user/bob/inbox'), [1], 'bob\'s connection still answers')
    t.notOk(dropped)
  })

  t.test('an anonymous empty clientId with clean=false is refused with CONNACK 2', async (t) => {
    t.equal(await rawConnack(open.mqttPort, { clientId: '', clean: false }), 2)
    t.equal(await rawConnack(open.mqttPort, { clientId: '', clean: true }), 0, 'with clean=true it is accepted')
  })
})
