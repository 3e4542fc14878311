// Outside the chat namespaces Threadline is a plain MQTT 3.1.1 broker, governed by
// THREADLINE_OPEN_TOPICS: none | authenticated | anonymous (DESIGN.md §2); the chat
// namespaces stay closed to anonymous clients.
import t from 'tap'
import type { IPublishPacket, MqttClient } from 'mqtt'
import { startNode, connectUser, token } from '../helpers/node.js'
import { closed, connackRefusal, connectRaw, createConversation, nextMessage, record, sendText, suback, tcpUrl } from '../helpers/access.js'

/** Resolves with the next PUBLISH packet on `topic`, flags included. */
function nextPacket (client: MqttClient, topic: string): Promise<IPublishPacket> {
  return new Promise((resolve) => {
    const onMessage = (got: string, _payload: Buffer, packet: IPublishPacket): void => {
      if (got !== topic) return
      client.off('message', onMessage)
      resolve(packet)
    }
    client.on('message', onMessage)
  })
}

t.test('THREADLINE_OPEN_TOPICS=none', async (t) => {
  const node = await startNode(t)

  t.test('a token holder publishing to foo/bar is disconnected', async (t) => {
    const alice = await connectUser(t, node, 'alice', 'phone')
    alice.on('error', () => {})
    alice.publish('foo/bar', 'hello')
    await closed(alice)
    t.notOk(alice.connected)
  })

  t.test('a will on an open topic is refused at CONNECT', async (t) => {
    const code = await connackRefusal(t, tcpUrl(node), {
      clientId: 'alice:will', username: 'alice', password: token(node, 'alice'), will: { topic: 'foo/will', payload: Buffer.from('gone'), qos: 0, retain: false }
    })
    t.equal(code, 5)
  })
})

t.test('THREADLINE_OPEN_TOPICS=authenticated', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_OPEN_TOPICS: 'authenticated' } })
  const url = tcpUrl(node)

  t.test('a token holder publishes and subscribes foo/bar at QoS 0, 1 and 2', async (t) => {
    const sub = await connectUser(t, node, 'alice', 'sub')
    const pub = await connectUser(t, node, 'bob', 'pub')
    t.same(await suback(sub, 'foo/#', 2), [2])
    for (const qos of [0, 1, 2] as const) {
      const got = nextPacket(sub, 'foo/bar')
      await pub.publishAsync('foo/bar', `q${qos}`, { qos })
      const packet = await got
      t.equal(packet.qos, qos, `QoS ${qos} delivered at QoS ${qos}`)
      t.equal(packet.payload.toString(), `q${qos}`)
    }
  })

  t.test('retained messages are kept, delivered to later subscribers and cleared', async (t) => {
    const pub = await connectUser(t, node, 'bob', 'retainer')
    await pub.publishAsync('foo/retained', 'kept', { qos: 1, retain: true })
    const late = await connectUser(t, node, 'alice', 'late')
    const got = nextPacket(late, 'foo/retained')
    t.same(await suback(late, 'foo/retained'), [1])
    const packet = await got
    t.equal(packet.payload.toString(), 'kept')
    t.ok(packet.retain, 'flagged retained')

    await pub.publishAsync('foo/retained', '', { qos: 1, retain: true }) // clears it
    await pub.publishAsync('foo/other', 'marker', { qos: 1, retain: true })
    const later = await connectUser(t, node, 'alice', 'later')
    const gotLater = record(later)
    const marker = nextPacket(later, 'foo/other')
    t.same(await suback(later, ['foo/retained', 'foo/other']), [1, 1])
    await marker
    t.same(gotLater.map(m => m.topic), ['foo/other'], 'the cleared message is gone')
  })

  t.test('a will on an open topic is published when the connection drops', async (t) => {
    const watcher = await connectUser(t, node, 'alice', 'watcher')
    t.same(await suback(watcher, 'foo/will'), [1])
    const got = nextMessage(watcher, 'foo/will')
    const dying = await connectRaw(t, url, {
      clientId: 'bob:dying', username: 'bob', password: token(node, 'bob'), will: { topic: 'foo/will', payload: Buffer.from('{"gone":true}'), qos: 1, retain: false }
    })
    dying.stream.destroy() // no DISCONNECT: the will goes out
    t.same(await got, { gone: true })
  })

  t.test('a will on a chat topic is refused at CONNECT', async (t) => {
    for (const topic of ['user/bob/inbox', 'user/alice/presence', 'conv/00000000-0000-4000-8000-000000000000/send']) {
      const code = await connackRefusal(t, url, {
        clientId: 'alice:will', username: 'alice', password: token(node, 'alice'), will: { topic, payload: Buffer.from('{}'), qos: 1, retain: false }
      })
      t.equal(code, 5, topic)
    }
  })

  t.test('a client without a token is refused', async (t) => {
    const code = await connackRefusal(t, url, { clientId: 'anon' })
    t.ok(code === 4 || code === 5, `CONNACK ${code}`)
  })

  t.test('a token holder still gets 0x80 for #', async (t) => {
    const alice = await connectUser(t, node, 'alice', 'hash')
    t.same(await suback(alice, ['#', '+/bar', 'foo/+']), [128, 128, 1])
  })
})

t.test('THREADLINE_OPEN_TOPICS=anonymous', async (t) => {
  const node = await startNode(t, { env: { THREADLINE_OPEN_TOPICS: 'anonymous' } })
  const url = tcpUrl(node)

  t.test('anonymous clients publish and subscribe open topics', async (t) => {
    const sub = await connectRaw(t, url, { clientId: 'anon-sub' })
    const pub = await connectRaw(t, url, { clientId: 'anon-pub' })
    t.same(await suback(sub, 'foo/bar', 2), [2])
    const got = nextPacket(sub, 'foo/bar')
    await pub.publishAsync('foo/bar', 'hello', { qos: 2 })
    const packet = await got
    t.equal(packet.payload.toString(), 'hello')
    t.equal(packet.qos, 2)
  })

  t.test('an anonymous # subscriber never receives chat traffic', async (t) => {
    const convId = await createConversation(node, ['alice', 'bob'])
    const anon = await connectRaw(t, url, { clientId: 'anon-hash' })
    t.same(await suback(anon, ['#', '+/bob/inbox', '+/+/events']), [1, 1, 1], 'wildcards are open topics for anonymous clients')
    t.same(await suback(anon, ['user/bob/inbox', `conv/${convId}/events`, 'presence/bob']), [128, 128, 128], 'chat topics by name are not')
    const got = record(anon)

    const bob = await connectUser(t, node, 'bob', 'phone')
    t.same(await suback(bob, ['user/bob/inbox', `conv/${convId}/events`]), [1, 1])
    const alice = await connectUser(t, node, 'alice', 'phone')
    const inbox = nextMessage(bob, 'user/bob/inbox')
    const events = nextMessage(bob, `conv/${convId}/events`)
    await sendText(alice, convId, 'secret')
    await inbox // the chat message has been delivered…
    await events
    const pub = await connectRaw(t, url, { clientId: 'anon-marker' })
    const marker = nextMessage(anon, 'foo/marker')
    await pub.publishAsync('foo/marker', '{"marker":true}', { qos: 1 }) // …and then the marker
    await marker
    t.same(got.map(m => m.topic), ['foo/marker'], 'only the open topic arrived')
  })

  t.test('an anonymous client publishing to a chat topic is disconnected', async (t) => {
    const convId = await createConversation(node, ['alice', 'bob'])
    for (const topic of [`conv/${convId}/send`, 'user/bob/inbox', 'user/bob/presence']) {
      const anon = await connectRaw(t, url, { clientId: `anon-${topic.length}` })
      anon.on('error', () => {})
      anon.publish(topic, JSON.stringify({ client_msg_id: 'x', type: 'text', text: 'hi' }))
      await closed(anon)
      t.notOk(anon.connected, topic)
    }
  })

  t.test('token holders use open topics too', async (t) => {
    const alice = await connectUser(t, node, 'alice', 'open')
    const anon = await connectRaw(t, url, { clientId: 'anon-listener' })
    t.same(await suback(anon, 'foo/from-alice'), [1])
    const got = nextMessage(anon, 'foo/from-alice')
    await alice.publishAsync('foo/from-alice', '{"hi":1}', { qos: 1 })
    t.same(await got, { hi: 1 })
  })
})
