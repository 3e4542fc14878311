// presence_visibility (DESIGN.md §3, §5): everyone | contacts (shares a conversation) |
// nobody, for a contact, a stranger and the user themself; at SUBSCRIBE, at delivery, on
// GET /v1/presence, and for viewers already subscribed when the setting or the set of
// contacts changes.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import type { Threadline } from '../../broker/server.js'
import { startNode, connectUser, token } from '../helpers/node.js'
import { published } from '../helpers/access.js'
import { newUsers, presenceOf, say, setVisibility, watcher, type Watcher } from './watch.js'

const node = await startNode(t, { env: { THREADLINE_PRESENCE_GRACE_MS: '300' } })

async function group (node: Threadline, creator: string, members: string[]): Promise<string> {
  const res = await node.app.inject({
    method: 'POST', url: '/v1/conversations', headers: { authorization: `Bearer ${token(node, creator)}` }, payload: { type: 'group', title: 'privacy', members }
  })
  if (res.statusCode !== 201) throw new Error(res.body)
  return (res.json() as { id: string }).id
}

/**
 * What `viewer` got about `subject` since it had `since` messages about them: `marker`
 * (visible to everyone) changes state after `subject`'s last publish, and once the
 * marker's message is in, anything about `subject` published before it is in too (one
 * socket, in order).
 */
async function gotSince (viewer: Watcher, subject: string, since: number, marker: { client: MqttClient, id: string, state: 'active' | 'away' }): Promise<string[]> {
  await say(marker.client, marker.id, marker.state)
  await viewer.next(marker.id, marker.state === 'away' ? 'away' : 'online')
  return viewer.states(subject).slice(since)
}

t.test('each level, for a contact, a stranger and the user themself', async (t) => {
  const [alice, carol, sam] = await newUsers(node, 'alice', 'carol', 'sam')
  await group(node, alice, [carol])
  await connectUser(t, node, alice, 'phone')
  const expected = {
    everyone: { self: 0, contact: 0, stranger: 0 },
    contacts: { self: 0, contact: 0, stranger: 128 },
    nobody: { self: 0, contact: 128, stranger: 128 }
  } as const
  for (const level of ['everyone', 'contacts', 'nobody'] as const) {
    t.test(level, async (t) => {
      await setVisibility(node, alice, level)
      const viewers = {
        self: await watcher(t, node, alice, `self-${level}`),
        contact: await watcher(t, node, carol, level),
        stranger: await watcher(t, node, sam, level)
      }
      for (const [who, viewer] of Object.entries(viewers) as Array<[keyof typeof viewers, Watcher]>) {
        const code = await viewer.watch(alice)
        t.equal(code, expected[level][who], `SUBACK for the ${who}`)
        if (code === 0) t.same(await viewer.next(alice), { user_id: alice, state: 'online' }, `the ${who} gets the retained state`)
        const [entry] = await presenceOf(node, who === 'self' ? alice : who === 'contact' ? carol : sam, [alice])
        t.same(entry, code === 0 ? { user_id: alice, state: 'online' } : { user_id: alice, state: 'unknown' }, `GET /v1/presence for the ${who}`)
      }
    })
  }
})

t.test('GET /v1/presence: offline with last_seen, hidden and unknown ids alike, in the order asked', async (t) => {
  const [viewer, gone, hidden] = await newUsers(node, 'viewer', 'gone', 'hidden')
  await setVisibility(node, hidden, 'nobody')
  const w = await watcher(t, node, viewer)
  await w.watch(gone)
  const c = await connectUser(t, node, gone, 'phone')
  await w.next(gone, 'online')
  await c.endAsync()
  const offline = await w.next(gone, 'offline')
  t.same(await presenceOf(node, viewer, [hidden, 'no-such-user', gone, gone, viewer]), [
    { user_id: hidden, state: 'unknown' },
    { user_id: 'no-such-user', state: 'unknown' },
    { user_id: gone, state: 'offline', last_seen: offline.last_seen },
    { user_id: viewer, state: 'online' }
  ], 'hidden and non-existent look the same; duplicates once')
})

t.test('a setting change while subscribed: what it no longer allows stops at once; widening needs a new SUBSCRIBE', async (t) => {
  const [alice, carol, sam, zed] = await newUsers(node, 'alice', 'carol', 'sam', 'zed')
  await group(node, alice, [carol])
  const phone = await connectUser(t, node, alice, 'phone')
  const marker = { client: await connectUser(t, node, zed, 'phone'), id: zed }
  const self = await watcher(t, node, alice, 'self')
  const contact = await watcher(t, node, carol)
  const stranger = await watcher(t, node, sam)
  for (const w of [self, contact, stranger]) {
    t.equal(await w.watch(alice), 0)
    t.equal(await w.watch(zed), 0)
    await w.next(alice, 'online')
  }

  let since = stranger.states(alice).length
  await setVisibility(node, alice, 'contacts')
  await say(phone, alice, 'away')
  // alice's self-watch device is active: the user stays online unless it says away too
  await say(self.client, alice, 'away')
  await contact.next(alice, 'away')
  await self.next(alice, 'away')
  t.same(await gotSince(stranger, alice, since, { ...marker, state: 'away' }), [], 'contacts: the stranger gets nothing more')

  since = contact.states(alice).length
  await setVisibility(node, alice, 'nobody')
  await say(phone, alice, 'active')
  await self.next(alice, 'online')
  t.same(await gotSince(contact, alice, since, { ...marker, state: 'active' }), [], 'nobody: the contact gets nothing more')
  t.same(await presenceOf(node, carol, [alice]), [{ user_id: alice, state: 'unknown' }])

  const sinceContact = contact.states(alice).length
  const sinceStranger = stranger.states(alice).length
  await setVisibility(node, alice, 'everyone')
  await say(phone, alice, 'away')
  await self.next(alice, 'away')
  t.same(await gotSince(contact, alice, sinceContact, { ...marker, state: 'away' }), [], 'widened: nothing on the withdrawn subscription')
  t.same(await gotSince(stranger, alice, sinceStranger, { ...marker, state: 'active' }), [])
  t.equal(await stranger.watch(alice), 0, 'a new SUBSCRIBE is granted')
  t.same(await stranger.next(alice, 'away'), { user_id: alice, state: 'away' }, 'with the retained state')
  t.same(self.states(alice), ['online', 'away', 'online', 'away'], 'the user always sees their own')
})

t.test('contacts: a conversation fewer in common withdraws the grant', async (t) => {
  const [alice, dave, zed] = await newUsers(node, 'alice', 'dave', 'zed')
  await setVisibility(node, alice, 'contacts')
  await setVisibility(node, dave, 'contacts')
  const conv = await group(node, alice, [dave])
  const phone = await connectUser(t, node, alice, 'phone')
  const davePhone = await connectUser(t, node, dave, 'phone')
  const marker = { client: await connectUser(t, node, zed, 'phone'), id: zed }
  const daveWatch = await watcher(t, node, dave)
  const aliceWatch = await watcher(t, node, alice, 'watch')
  t.equal(await daveWatch.watch(alice), 0)
  t.equal(await aliceWatch.watch(dave), 0)
  t.equal(await daveWatch.watch(zed), 0)
  t.equal(await aliceWatch.watch(zed), 0)

  const removed = await node.app.inject({ method: 'DELETE', url: `/v1/conversations/${conv}/members/${dave}`, headers: { authorization: `Bearer ${token(node, alice)}` } })
  t.equal(removed.statusCode, 204, removed.body)
  // membershipChanged re-checks the grants; the next change of each shows whether it went
  const [sinceDave, sinceAlice] = [daveWatch.states(alice).length, aliceWatch.states(dave).length]
  const changed = Promise.all([published(node, `presence/${alice}`), published(node, `presence/${dave}`)])
  await say(phone, alice, 'away')
  await say(aliceWatch.client, alice, 'away')
  await say(davePhone, dave, 'away')
  await say(daveWatch.client, dave, 'away')
  await changed
  t.same(await gotSince(daveWatch, alice, sinceDave, { ...marker, state: 'away' }), [], 'the removed member no longer sees alice')
  t.same(await gotSince(aliceWatch, dave, sinceAlice, { ...marker, state: 'active' }), [], 'nor alice the removed member')
  t.equal(await daveWatch.watch(alice), 128, 'and may not subscribe again')
})
