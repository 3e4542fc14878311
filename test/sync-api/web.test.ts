import { mkdir, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import type { Store } from '../../broker/store/index.js'
import { WebBundle, projectRoot } from '../../sync-api/web/bundle.js'
import { tempDir } from '../helpers/node.js'
import { openTestStore } from '../helpers/stores.js'
import { buildTestApi } from '../helpers/sync-api.js'

const store: Store = await openTestStore(t, process.env.DATABASE_URL ? 'pg' : 'pglite')

/** A project root holding a page of three small files. */
async function fakeRoot (t: Parameters<typeof tempDir>[0]): Promise<string> {
  const root = await tempDir(t)
  await mkdir(path.join(root, 'clients', 'web'), { recursive: true })
  await writeFile(path.join(root, 'clients', 'web', 'app.ts'), 'import { hello } from \'./hello.js\'\ndocument.title = hello\n')
  await writeFile(path.join(root, 'clients', 'web', 'hello.ts'), 'export const hello: string = \'hello\'\n')
  await writeFile(path.join(root, 'clients', 'web', 'index.html'), '<!doctype html><title>x</title><script type="module" src="/app.js"></script>\n')
  await writeFile(path.join(root, 'clients', 'web', 'style.css'), 'body { margin: 0 }\n')
  return root
}

t.test('GET / serves the page, its bundled script and style; no build step by hand', async (t) => {
  // the real page, built into a directory of this test's own
  const web = new WebBundle({ outDir: path.join(await tempDir(t), 'web') })
  const { app } = await buildTestApi(t, store, { web })
  const page = await app.inject({ method: 'GET', url: '/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.headers['content-security-policy'], /default-src 'self'/)
  t.equal(page.headers['referrer-policy'], 'no-referrer')
  t.match(page.body, /<label for="message"[^>]*>Message<\/label>/, 'the composer is labelled "Message"')
  t.match(page.body, /src="\/app\.js"/)

  const script = await app.inject({ method: 'GET', url: '/app.js' })
  t.equal(script.statusCode, 200)
  t.match(script.headers['content-type'], /javascript/)
  t.notMatch(script.body, /from\s*["']node:|require\(["']node:/, 'nothing of Node in the browser bundle')
  t.match(script.body, /sourceMappingURL=app\.js\.map/)
  t.equal((await app.inject({ method: 'GET', url: '/app.js.map' })).statusCode, 200)
  const style = await app.inject({ method: 'GET', url: '/style.css' })
  t.match(style.headers['content-type'], /^text\/css/)
  t.equal((await app.inject({ method: 'HEAD', url: '/' })).statusCode, 200)
  t.equal(await web.stale(), false, 'built once, then served as is')
})

t.test('the page\'s routes leave the others alone: /docs, /healthz, /v1 and the JSON 404', async (t) => {
  const web = new WebBundle({ root: await fakeRoot(t), outDir: path.join(await tempDir(t), 'web') })
  const { app, call } = await buildTestApi(t, store, { web })
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/docs/json' })).statusCode, 200)
  t.equal((await call('ann', { method: 'GET', url: '/v1/me' })).statusCode, 200)
  for (const url of ['/nope', '/build.json', '/app.ts', '/../package.json']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.match(res.json(), { code: 'not_found' }, url)
  }
  const openapi = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, unknown> }
  t.notOk(openapi.paths['/'], 'the page is no API route')
})

t.test('a source newer than the bundle makes it stale: the next request builds it again', async (t) => {
  const root = await fakeRoot(t)
  const outDir = path.join(await tempDir(t), 'web')
  const first = new WebBundle({ root, outDir })
  t.equal(await first.stale(), true, 'nothing built yet')
  await first.ready()
  t.equal(await first.stale(), false)
  // an imported module (found through the build's inputs), then a copied file
  for (const file of ['hello.ts', 'style.css']) {
    const later = new Date(Date.now() + 60_000)
    await utimes(path.join(root, 'clients', 'web', file), later, later)
    const again = new WebBundle({ root, outDir })
    t.equal(await again.stale(), true, `${file} changed`)
    await again.ready()
    // the rebuild read it, but its mtime is still ahead of the build: set it back
    const earlier = new Date(Date.now() - 60_000)
    await utimes(path.join(root, 'clients', 'web', file), earlier, earlier)
    t.equal(await again.stale(), false, 'fresh after the rebuild')
  }
})

t.test('no page sources: / answers 503 and the rest of the sidecar works', async (t) => {
  const web = new WebBundle({ root: path.join(await tempDir(t), 'no-such-root'), outDir: path.join(await tempDir(t), 'web') })
  const { app } = await buildTestApi(t, store, { web })
  const res = await app.inject({ method: 'GET', url: '/' })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'unavailable', message: /could not be built/ })
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
})

t.test('the project root is found from the compiled file\'s place too', async (t) => {
  const root = projectRoot()
  t.ok(root !== null, 'found from sync-api/web/')
  t.equal(projectRoot(path.join(root as string, 'dist', 'sync-api', 'web')), root, 'and from dist/sync-api/web/')
})
