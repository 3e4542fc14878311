// Who may read /metrics: admin tokens on the HTTP port; anyone who reaches the metrics port.
import t from 'tap'
import { startNode, token } from '../helpers/node.js'
import { fetchMetrics, parseScrape } from '../helpers/metrics.js'
import { METRICS } from '../../plugins/metrics/index.js'

t.test('on the HTTP port /metrics answers 401 without a valid token, 403 to a non-admin, 200 to an admin', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  const none = await fetchMetrics(node, null)
  t.equal(none.status, 401)
  t.match(none.headers.get('www-authenticate'), /^Bearer/)
  t.match(await none.json(), { code: 'unauthorized', message: /admin token/ })
  const forged = await fetchMetrics(node, `${token(node, 'root', { role: 'admin' })}x`)
  t.equal(forged.status, 401)
  t.match(forged.headers.get('www-authenticate'), /invalid_token/)
  t.match(await forged.json(), { code: 'unauthorized' })
  for (const role of ['user', 'integrator'] as const) {
    const res = await fetchMetrics(node, token(node, 'someone', { role }))
    t.equal(res.status, 403, `${role}: 403`)
    t.match(await res.json(), { code: 'forbidden', message: /role admin/ })
  }
  const ok = await fetchMetrics(node)
  t.equal(ok.status, 200)
  t.equal(ok.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  const s = parseScrape(await ok.text())
  t.ok(s.families.some(f => f.name === 'threadline_sends_total'))
  t.equal((await fetch(`http://127.0.0.1:${node.httpPort}/v1/metrics`, { headers: { authorization: `Bearer ${token(node, 'root', { role: 'admin' })}` } })).status, 404, '/metrics is a root route, not under /v1')
})

t.test('THREADLINE_METRICS_PORT serves /metrics without a token, and nothing else; it closes with the node', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: { THREADLINE_METRICS_PORT: '0', THREADLINE_NODE_ID: 'with-port' } })
  const port = node.services.get(METRICS).port
  t.ok(port !== null && port > 0 && port !== node.httpPort && port !== node.mqttPort, `a port of its own: ${port}`)
  const base = `http://127.0.0.1:${port}`
  const res = await fetch(`${base}/metrics`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  const s = parseScrape(await res.text())
  t.ok(s.series.length > 10 && s.series.every(f => f.metrics.every(m => m.labels?.node === 'with-port')), 'the same series, labelled by node')
  for (const path of ['/v1/me', '/v1/conversations', '/healthz', '/', '/metrics/x']) {
    const other = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token(node, 'root', { role: 'admin' })}` } })
    t.equal(other.status, 404, `${path}: 404`)
    t.match(await other.json(), { code: 'not_found' })
  }
  const post = await fetch(`${base}/metrics`, { method: 'POST' })
  t.equal(post.status, 400)
  t.equal(post.headers.get('allow'), 'GET, HEAD')
  t.equal((await fetch(`${base}/metrics`, { method: 'HEAD' })).status, 200)
  await node.close()
  await t.rejects(fetch(`${base}/metrics`), 'closed with the node')
})

t.test('the metrics port is bound to loopback unless THREADLINE_METRICS_HOST says otherwise', async (t) => {
  const node = await startNode(t, { store: 'pglite', env: { THREADLINE_METRICS_PORT: '0' } })
  const port = node.services.get(METRICS).port as number
  const { createConnection } = await import('node:net')
  const addresses = (await import('node:os')).networkInterfaces()
  const external = Object.values(addresses).flat().find(a => a !== undefined && a.family === 'IPv4' && !a.internal)?.address
  if (external === undefined) {
    t.pass('no non-loopback address on this machine to try')
    return
  }
  const refused = await new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: external, port })
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => resolve(true))
  })
  t.ok(refused, `not reachable on ${external}`)
})
