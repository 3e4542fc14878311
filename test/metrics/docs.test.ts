// docs/operations.md "Metrics" against a real scrape: every series a node serves is
// documented, every series the docs (table, scrape configs, alert rules) name exists, and
// the YAML blocks parse.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { parse } from 'yaml'
import { startNode } from '../helpers/node.js'
import { scrape } from '../helpers/metrics.js'

const doc = await readFile(new URL('../../docs/operations.md', import.meta.url), 'utf8')
const section = doc.slice(doc.indexOf('\n## Metrics\n'), doc.indexOf('\n## ', doc.indexOf('\n## Metrics\n') + 1))
const yamlBlocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map(m => m[1] as string)

interface Rule { alert: string, expr: string, for: string, labels: Record<string, string>, annotations: Record<string, string> }

t.test('the YAML of the Metrics section parses: two scrape configs and alert rules with an expression each', async (t) => {
  t.equal(yamlBlocks.length, 3)
  const [withToken, withPort, rules] = yamlBlocks.map(b => parse(b) as Record<string, unknown>)
  t.match(withToken, { scrape_configs: [{ job_name: 'threadline', authorization: { type: 'Bearer', credentials_file: String } }] })
  t.match(withPort, { scrape_configs: [{ static_configs: [{ targets: Array }] }] })
  const list = (rules as { groups: Array<{ rules: Rule[] }> }).groups.flatMap(g => g.rules)
  t.ok(list.length >= 7, `${list.length} rules`)
  for (const rule of list) t.match(rule, { alert: /^Threadline/, expr: /threadline_/, for: /^\d+m$/, labels: { severity: String }, annotations: { summary: String } }, rule.alert)
})

t.test('every series a node serves is documented, and every series the docs name is served', async (t) => {
  const node = await startNode(t, { store: 'pglite' })
  const served = new Set((await scrape(node)).families.map(f => f.name).filter(n => n.startsWith('threadline_')))
  t.ok(served.size >= 20, `${served.size} threadline_ families`)
  const named = new Set([...section.matchAll(/\bthreadline_[a-z_]+/g)].map(m => (m[0] as string).replace(/_(bucket|sum|count)$/, '')))
  for (const name of served) t.ok(named.has(name), `${name} is documented`)
  for (const name of named) t.ok(served.has(name), `${name}, named in the docs, is served`)
})
