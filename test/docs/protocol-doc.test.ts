// docs/protocol.md is what an integrator works from: every error code of the catalog,
// every env variable the config reads and every client topic must be in it or the README.
import { readdir, readFile } from 'node:fs/promises'
import t from 'tap'
import { ERROR_CODES, errorStatus } from '../../schemas/errors.js'

const protocol = await readFile(new URL('../../docs/protocol.md', import.meta.url), 'utf8')
const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
// the core variables and every plugin's own (each plugin parses its section in its folder)
const pluginSources = async (): Promise<string[]> => {
  const { readdir } = await import('node:fs/promises')
  const root = new URL('../../plugins/', import.meta.url)
  const files = (await readdir(root, { recursive: true })).filter(f => f.endsWith('.ts'))
  return await Promise.all(files.map(f => readFile(new URL(f, root), 'utf8')))
}
const config = [await readFile(new URL('../../broker/config.ts', import.meta.url), 'utf8'), ...await pluginSources()].join('\n')

t.test('every error code is documented with its HTTP status', async (t) => {
  for (const code of ERROR_CODES) {
    t.match(protocol, new RegExp('`' + code + '`'), `${code} appears in docs/protocol.md`)
    const row = protocol.split('\n').find(line => line.includes('`' + code + '`') && line.includes(String(errorStatus[code])))
    t.ok(row, `${code} is documented next to its status ${errorStatus[code]}`)
  }
})

t.test('every configuration variable (core and plugins) is documented in the README', async (t) => {
  const variables = [...new Set([...config.matchAll(/'((?:THREADLINE|DATABASE|REDIS)_[A-Z_]+)'/g)].map(m => m[1] as string))]
  t.ok(variables.length >= 10, `found ${variables.length} variables in broker/config.ts and plugins/`)
  for (const v of variables) t.match(readme, v, `${v} is in the README`)
})

t.test('every client topic of the design is in the protocol reference', async (t) => {
  for (const topic of ['conv/<c>/send', 'conv/<c>/typing', 'conv/<c>/read', 'user/<me>/presence', 'user/<me>/inbox', 'conv/<c>/events', 'conv/<c>/receipts', 'presence/<u>']) {
    t.ok(protocol.includes(topic), `${topic} is documented`)
  }
})

t.test('the docs point at nothing outside the repository', async (t) => {
  const { access } = await import('node:fs/promises')
  const root = new URL('../../', import.meta.url)
  const files = ['README.md', ...(await readdir(new URL('docs/', root))).filter(f => f.endsWith('.md')).map(f => `docs/${f}`)]
  for (const file of files) {
    const text = await readFile(new URL(file, root), 'utf8')
    // the design notes and style guide live beside the repository, not in it
    t.notMatch(text, /DESIGN\.md|STYLE\.md|\/shared\//, `${file} cites no file that does not ship`)
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (target === undefined || /^[a-z]+:/.test(target)) continue
      const resolved = new URL(target, new URL(file, root))
      t.ok(resolved.href.startsWith(root.href), `${file} → ${target} stays in the repository`)
      await t.resolves(access(resolved), `${file} → ${target} exists`)
    }
  }
})
