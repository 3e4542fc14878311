// THREADLINE_JWT_ISSUER / THREADLINE_JWT_AUDIENCE (DESIGN.md §7): when set, a token must
// carry that `iss` / `aud` at CONNECT and over HTTP alike; unset, neither is checked.
import t from 'tap'
import { createSigner } from 'fast-jwt'
import { startNode, TEST_SECRET } from '../helpers/node.js'
import { connackRefusal, connectRaw, suback, tcpUrl } from '../helpers/access.js'

const ISS = 'https://id.example.test'
const AUD = 'threadline-chat'
const sign = (claims: Record<string, unknown>): string =>
  createSigner({ key: TEST_SECRET, expiresIn: 3_600_000 })({ sub: 'alice', ...claims })

const node = await startNode(t, { env: { THREADLINE_JWT_ISSUER: ISS, THREADLINE_JWT_AUDIENCE: AUD } })
const me = async (jwt: string): Promise<{ status: number, body: Record<string, unknown> }> => {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}/v1/me`, { headers: { authorization: `Bearer ${jwt}` } })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

const refused: Array<[string, Record<string, unknown>, RegExp]> = [
  ['without iss or aud', {}, /iss/],
  ['without aud', { iss: ISS }, /aud/],
  ['without iss', { aud: AUD }, /iss/],
  ['with another iss', { iss: 'https://evil.example.test', aud: AUD }, /iss is not the configured one/],
  ['with another aud', { iss: ISS, aud: 'another-app' }, /aud is not the configured one/]
]

for (const [what, claims, why] of refused) {
  t.test(`a token ${what} is refused: CONNACK 4 and HTTP 401`, async (t) => {
    const jwt = sign(claims)
    t.equal(await connackRefusal(t, tcpUrl(node), { clientId: 'alice:phone', username: 'alice', password: jwt }), 4)
    const res = await me(jwt)
    t.equal(res.status, 401)
    t.match(res.body, { code: 'unauthorized', message: why })
  })
}

t.test('a token with the configured iss and aud is accepted over MQTT and HTTP', async (t) => {
  for (const aud of [AUD, ['another-app', AUD]]) {
    const jwt = sign({ iss: ISS, aud })
    const client = await connectRaw(t, tcpUrl(node), { clientId: 'alice:phone', username: 'alice', password: jwt })
    t.same(await suback(client, 'user/alice/inbox'), [1], `aud ${JSON.stringify(aud)}: connected`)
    await client.endAsync()
    t.equal((await me(jwt)).status, 200, `aud ${JSON.stringify(aud)}: HTTP 200`)
  }
})

t.test('the node signs its own tokens with the configured iss and aud', async (t) => {
  const jwt = node.tokens.sign({ sub: 'alice' }, 60)
  const claims = JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>
  t.match(claims, { iss: ISS, aud: AUD })
  t.equal((await me(jwt)).status, 200)
})

t.test('unset, iss and aud are not checked', async (t) => {
  const plain = await startNode(t, { store: 'pglite' })
  const jwt = sign({ iss: 'anyone', aud: 'anything' })
  const client = await connectRaw(t, tcpUrl(plain), { clientId: 'alice:phone', username: 'alice', password: jwt })
  t.ok(client.connected)
})
