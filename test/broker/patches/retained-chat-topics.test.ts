// broker/patches/retained-chat-topics.ts: a SUBSCRIBE under user/ or conv/ (the inbox
// every device subscribes to) no longer walks every retained message, memory and Redis
// alike; filters elsewhere (presence/<u>, open topics, wildcards) are still looked up.
import type { Readable } from 'node:stream'
import t from 'tap'
import { startNode } from '../../helpers/node.js'

interface Persistence {
  storeRetained(packet: object): Promise<void> | void
  createRetainedStreamCombi(patterns: string[]): Readable
}

async function read (stream: Readable): Promise<string[]> {
  const topics: string[] = []
  for await (const packet of stream) topics.push((packet as { topic: string }).topic)
  return topics.sort()
}

for (const redis of [false, true]) {
  t.test(`retained lookups skip the chat namespaces (${redis ? 'Redis' : 'memory'} persistence)`, async (t) => {
    const node = await startNode(t, { store: 'pglite', redis })
    const persistence = (node.broker as unknown as { persistence: Persistence }).persistence
    // a retained message where none can ever be: stored straight into the persistence to
    // show that a chat filter is not even looked up
    const stray = `user/stray-${Date.now()}/inbox`
    const presence = `presence/p-${Date.now()}`
    for (const topic of [stray, presence]) {
      await persistence.storeRetained({ cmd: 'publish', topic, payload: Buffer.from('{}'), qos: 0, retain: true, dup: false, brokerId: node.broker.id, brokerCounter: 1 })
    }
    t.same(await read(persistence.createRetainedStreamCombi([stray])), [], 'the inbox filter reads nothing')
    t.same(await read(persistence.createRetainedStreamCombi(['conv/+/events', 'user/#'])), [], 'nor do other chat filters')
    t.same(await read(persistence.createRetainedStreamCombi([stray, presence])), [presence], 'presence/<u> in the same SUBSCRIBE is still read')
    t.same(await read(persistence.createRetainedStreamCombi(['#'])), [presence, stray].sort(), 'a wildcard outside the chat namespaces is looked up as before')
  })
}
