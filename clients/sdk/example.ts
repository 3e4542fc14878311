// The SDK's smallest example: Alice and Bob, one client each, in one process.
//   ALICE=$(npm run -s token -- alice) BOB=$(npm run -s token -- bob) npx tsx clients/sdk/example.ts
import { ThreadlineClient } from './index.js'

const url = process.env.THREADLINE_URL ?? 'http://127.0.0.1:8080'
const alice = new ThreadlineClient({ url, token: process.env.ALICE ?? '', deviceId: 'example' })
const bob = new ThreadlineClient({ url, token: process.env.BOB ?? '', deviceId: 'example' })
await Promise.all([alice.connect(), bob.connect()])
console.log(`connected: alice over ${alice.transport}, bob over ${bob.transport}`)

bob.on('message', (m, convId) => {
  console.log(`bob sees #${m.seq} from ${m.sender_id}: ${m.text}`)
  bob.markRead(convId, m.seq)
})
alice.on('outbox', e => console.log(`alice's "${e.text}" is ${e.status}${e.seq !== undefined ? ` (seq ${e.seq})` : ''}`))

const conv = await alice.createConversation({ type: 'direct', members: [bob.userId] })
const entry = alice.send(conv.id, 'Hi Bob!')
await new Promise<void>(resolve => alice.on('outbox', e => { if (e.temp_id === entry.temp_id && e.status === 'read') resolve() }))
await Promise.all([alice.close(), bob.close()])
