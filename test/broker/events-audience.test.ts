// broker/events-audience.ts: with its broker state in memory, a node skips the publish of a
// send on conv/<c>/events when no subscription could take it, and only then: a live
// subscriber gets it, and so does a persistent session while it is offline.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { eventsConvOf, eventsFollowedBy } from '../../broker/events-audience.js'
import type { Threadline } from '../../broker/server.js'
import { startNode, connectUser } from '../helpers/node.js'
import { connectRecording, createConversation, nextMessage, queuedTopics, sendText, suback } from '../helpers/access.js'
import { waitFor } from '../helpers/wait.js'

const run = randomBytes(3).toString('hex')

t.test('which conversations a filter follows on conv/<c>/events', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['conv/c1/events', 'c1'],
    ['conv/c1/+', 'c1'],
    ['conv/c1/#', 'c1'],
    ['conv/c1/events/#', 'c1'],
    ['+/c1/events', 'c1'],
    ['conv/+/events', 'all'],
    ['+/+/+', 'all'],
    ['conv/#', 'all'],
    ['#', 'all'],
    ['+/#', 'all'],
    ['conv/c1/typing', null],
    ['conv/c1', null],
    ['conv/c1/events/x', null],
    ['conv/c1/events/+', null],
    ['user/u1/inbox', null],
    ['+/+', null],
    ['$share/g/conv/c1/events', null],
    ['presence/u1', null]
  ]
  for (const [filter, follows] of cases) t.equal(eventsFollowedBy(filter), follows, filter)
  t.equal(eventsConvOf('conv/c1/events'), 'c1')
  t.equal(eventsConvOf('conv/c1/typing'), null)
  t.equal(eventsConvOf('user/u1/inbox'), null)
})

/** Counts the broker's publishes on `topic` (Aedes emits 'publish' once a packet is routed). */
function countPublishes (t: { teardown(fn: () => void): void }, node: Threadline, topic: string): { readonly n: number } {
  const seen = { n: 0 }
  const onPublish = (packet: { topic: string }): void => { if (packet.topic === topic) seen.n++ }
  node.broker.on('publish', onPublish)
  t.teardown(() => { node.broker.off('publish', onPublish) })
  return seen
}

/** Resolves once every fan-out publish the node started has settled (and was routed, if made). */
const fanOutSettled = (node: Threadline): Promise<void> => waitFor(() => node.sends.fanout.inFlight === 0, 'the fan-out to settle')

t.test('in memory', async (t) => {
  const node = await startNode(t)
  const [ana, ben, cat] = ['ana', 'ben', 'cat'].map(name => `${name}-${run}`) as [string, string, string]

  t.test('nobody follows the events: the inboxes get the send, conv/<c>/events is not published', async (t) => {
    const conv = await createConversation(node, [ana, ben])
    const events = countPublishes(t, node, `conv/${conv}/events`)
    const inbox = countPublishes(t, node, `user/${ben}/inbox`)
    const sender = await connectUser(t, node, ana, 'phone')
    const reader = await connectUser(t, node, ben, 'phone')
    t.same(await suback(reader, `user/${ben}/inbox`), [1])
    const got = nextMessage(reader, `user/${ben}/inbox`)
    await sendText(sender, conv, 'unfollowed')
    t.match(await got, { t: 'event', conv_id: conv, client_msg_id: 'unfollowed' })
    await fanOutSettled(node)
    t.equal(inbox.n, 1)
    t.equal(events.n, 0)
  })

  t.test('a live member on conv/<c>/events gets every send; once it leaves, they are skipped again', async (t) => {
    const conv = await createConversation(node, [ana, ben])
    const events = countPublishes(t, node, `conv/${conv}/events`)
    const sender = await connectUser(t, node, ana, 'tablet')
    const follower = await connectUser(t, node, ben, 'tablet')
    t.same(await suback(follower, `conv/${conv}/events`), [1])
    const got = nextMessage(follower, `conv/${conv}/events`)
    await sendText(sender, conv, 'followed')
    t.match(await got, { t: 'event', conv_id: conv, client_msg_id: 'followed' })
    await follower.endAsync()
    await waitFor(() => !Object.keys((node.broker as unknown as { clients: object }).clients).includes(`${ben}:tablet`), 'the follower to be gone')
    await sendText(sender, conv, 'after')
    await fanOutSettled(node)
    t.equal(events.n, 1, 'published while followed, not after')
  })

  t.test('a persistent session that follows the events offline finds them queued when it comes back', async (t) => {
    const conv = await createConversation(node, [ana, cat])
    const sender = await connectUser(t, node, ana, 'laptop')
    const away = await connectUser(t, node, cat, 'phone', { clean: false })
    t.same(await suback(away, `conv/${conv}/events`), [1])
    await away.endAsync()
    await waitFor(() => !Object.keys((node.broker as unknown as { clients: object }).clients).includes(`${cat}:phone`), 'the session to be offline')
    await sendText(sender, conv, 'while-away')
    await fanOutSettled(node)
    t.ok((await queuedTopics(node, `${cat}:phone`)).includes(`conv/${conv}/events`), 'queued for the offline session')
    const back = await connectRecording(t, node, cat, 'phone', { clean: false })
    t.match(await back.first(`conv/${conv}/events`), { conv_id: conv, client_msg_id: 'while-away' })
  })
})
