// Refused topics must stay refused across clean=false reconnects (DESIGN.md §3): Aedes 1.x
// stores every topic of a persistent session's SUBSCRIBE even when part of it got 0x80,
// and queues offline packets for every stored topic; so delivery is checked again, and
// the ACL removes refused topics from the stored session.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { startNode, connectUser } from '../helpers/node.js'
import { clientReady, connectRecording, createConversation, published, queuedTopics, removeMember, sendText, storedTopics, suback } from '../helpers/access.js'

// Redis is shared by every test file of a run (and its pub/sub by every database):
// user ids unique to this run keep other files' inboxes and sessions out.
const run = randomBytes(3).toString('hex')

for (const redis of [false, true]) {
  // without REDIS_URL the Redis half fails, naming it (test/helpers/redis-db.ts), rather than passing unseen
  t.test(`with ${redis ? 'Redis' : 'in-memory'} sessions`, async (t) => {
    const node = await startNode(t, { redis })
    const [alice, bob, carol, dana, erik, gina, hugo] = ['alice', 'bob', 'carol', 'dana', 'erik', 'gina', 'hugo'].map(name => `${name}-${run}`) as [string, string, string, string, string, string, string]

    t.test('a refused inbox in a mixed SUBSCRIBE is never delivered after a clean=false reconnect', async (t) => {
      const bobsConv = await createConversation(node, [bob, carol])
      const alicesConv = await createConversation(node, [alice, carol])
      const sender = await connectUser(t, node, carol, 'phone')

      const phone = await connectUser(t, node, alice, 'phone', { clean: false })
      t.same(await suback(phone, [`user/${alice}/inbox`, `user/${bob}/inbox`]), [1, 128], 'own inbox granted, bob\'s refused')
      await phone.endAsync()
      t.same(await storedTopics(node, `${alice}:phone`), [`user/${alice}/inbox`], 'the stored session keeps only the granted topic')

      // while alice is away: first an event for bob, then one for her
      const bobsDone = published(node, `user/${bob}/inbox`)
      const alicesDone = published(node, `user/${alice}/inbox`)
      await sendText(sender, bobsConv, 'for-bob')
      await sendText(sender, alicesConv, 'for-alice')
      await bobsDone
      await alicesDone

      const back = await connectRecording(t, node, alice, 'phone', { clean: false })
      const own = await back.first(`user/${alice}/inbox`)
      t.match(own, { t: 'event', conv_id: alicesConv, client_msg_id: 'for-alice' }, 'her own event arrives')
      t.same(back.got.filter(m => m.topic !== `user/${alice}/inbox`), [], 'bob\'s event, published before hers, never arrived')
      t.notOk(back.got.some(m => m.payload.includes('for-bob')))
    })

    t.test('events queued for a member removed while offline are withheld at reconnect', async (t) => {
      const convId = await createConversation(node, [dana, erik])
      const otherConv = await createConversation(node, [dana, erik])
      const sender = await connectUser(t, node, erik, 'phone')

      const phone = await connectUser(t, node, dana, 'phone', { clean: false })
      // two SUBSCRIBEs: one packet with two granted topics never gets its SUBACK with
      // Redis sessions (aedes-persistence's broadcast waits collide; see the report)
      t.same(await suback(phone, `conv/${convId}/events`), [1])
      t.same(await suback(phone, `user/${dana}/inbox`), [1])
      await phone.endAsync()

      await removeMember(node, convId, dana)
      const leftDone = published(node, `conv/${convId}/events`)
      const ownDone = published(node, `user/${dana}/inbox`)
      await sendText(sender, convId, 'after-removal')
      await sendText(sender, otherConv, 'still-member')
      await leftDone
      await ownDone
      t.ok((await queuedTopics(node, `${dana}:phone`)).includes(`conv/${convId}/events`),
        'the left conversation\'s event waits in her queue: only the delivery check stands in its way')

      const ready = clientReady(node, `${dana}:phone`)
      const back = await connectRecording(t, node, dana, 'phone', { clean: false })
      const own = await back.first(`user/${dana}/inbox`)
      t.match(own, { conv_id: otherConv, client_msg_id: 'still-member' })
      t.same(back.got.filter(m => m.topic !== `user/${dana}/inbox`), [], 'nothing of the conversation she left')
      await ready
      t.same(await storedTopics(node, `${dana}:phone`), [`user/${dana}/inbox`], 'the refused topic left the stored session')
    })

    t.test('presence queued for a viewer who stopped being a contact is withheld at reconnect', async (t) => {
      const shared = await createConversation(node, [gina, hugo])
      await node.store.query("UPDATE users SET presence_visibility = 'contacts' WHERE id = $1", [hugo])
      const phone = await connectUser(t, node, gina, 'phone', { clean: false })
      t.same(await suback(phone, `presence/${hugo}`), [1], 'a contact may watch')
      t.same(await suback(phone, `user/${gina}/inbox`), [1])
      await phone.endAsync()

      await removeMember(node, shared, gina) // no conversation in common any more
      const presenceDone = published(node, `presence/${hugo}`)
      await new Promise<void>((resolve, reject) => node.broker.publish({
        cmd: 'publish', topic: `presence/${hugo}`, payload: Buffer.from(JSON.stringify({ user_id: hugo, state: 'online' })), qos: 1, retain: false, dup: false
      }, (err) => (err ? reject(err) : resolve())))
      await presenceDone
      t.ok((await queuedTopics(node, `${gina}:phone`)).includes(`presence/${hugo}`), 'hugo\'s presence waits in her queue')
      const other = await createConversation(node, [gina, carol])
      const sender = await connectUser(t, node, carol, 'tablet')
      const ownDone = published(node, `user/${gina}/inbox`)
      await sendText(sender, other, 'marker')
      await ownDone

      const back = await connectRecording(t, node, gina, 'phone', { clean: false })
      t.match(await back.first(`user/${gina}/inbox`), { client_msg_id: 'marker' })
      t.same(back.got.filter(m => m.topic !== `user/${gina}/inbox`), [], 'no presence of someone who no longer shows it to her')
    })
  })
}
