// A send refused as rate_limited was not stored: the SDK keeps it pending and sends it
// again once the wait the server named (retry_after_ms, Retry-After) has passed, so a
// burst past the user's limit ends with every message stored once, none failed.
import t from 'tap'
import type { OutboxEntry } from '../../../clients/sdk/index.js'
import { createConversation, userId } from '../../helpers/fixtures.js'
import { startNode, token } from '../../helpers/node.js'
import { onlineClient, recordEvents } from '../../helpers/sdk.js'
import { waitFor } from '../../helpers/wait.js'

for (const transport of ['mqtt', 'longpoll'] as const) {
  t.test(`over ${transport}, sends past the rate limit are resent after the server's wait and all stored once`, async (t) => {
    const node = await startNode(t, { store: 'pglite', env: { THREADLINE_SEND_RATE: '2', THREADLINE_SEND_BURST: '2' } })
    const [alice, bob] = [userId('alice'), userId('bob')]
    const conv = await createConversation(node, [alice, bob])
    let limited = 0
    node.telemetry.on('limited', (e) => { if (e.limit === 'send') limited++ })
    const a = await onlineClient(t, node, alice, { transport, resendAfterMs: 400 })
    t.equal(a.transport, transport)
    const outbox = recordEvents(a, 'outbox')

    const entries = Array.from({ length: 5 }, (_, i) => a.send(conv, `burst ${i}`))
    await waitFor(() => entries.every(e => a.outbox().find(o => o.temp_id === e.temp_id)?.status !== 'pending'), 'every send to be answered for good', 20_000)
    const statuses = outbox.got.map(([e]) => e as OutboxEntry)
    t.same(statuses.filter(e => e.status === 'failed'), [], 'none failed')
    t.ok(limited >= 3, `the server refused some of them first (${limited} refusals)`)

    const res = await node.app.inject({ method: 'GET', url: `/v1/conversations/${conv}/events`, headers: { authorization: `Bearer ${token(node, alice)}` } })
    const stored = (res.json() as { events: Array<{ text: string }> }).events.map(e => e.text).sort()
    t.same(stored, entries.map((_, i) => `burst ${i}`), 'each stored once')
  })
}
