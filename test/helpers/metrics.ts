// Scrapes a node's /metrics over real HTTP and reads it with a parser of the Prometheus
// text format (parse-prometheus-text-format), as Prometheus would.
//
// That parser folds a histogram's series into one and drops their labels (its flattening
// keeps only unlabelled _sum/_count): every histogram here is labelled (`node` at least),
// so values are read from a second parse in which histograms are typed `untyped`, where
// each _bucket, _sum and _count line stays a series of its own with its labels.
import parsePrometheusTextFormat, { type ParsedFamily, type ParsedSample } from 'parse-prometheus-text-format'
import type { Threadline } from '../../broker/server.js'
import { METRICS } from '../../plugins/metrics/index.js'
import { token } from './node.js'
import { waitFor } from './wait.js'

export interface Scrape {
  /** the families as the parser reads the scrape (types, help) */
  readonly families: ParsedFamily[]
  /** every series with its labels, histograms' _bucket, _sum and _count series included */
  readonly series: ParsedFamily[]
  readonly text: string
  /** the family named `name`; throws when absent */
  family(name: string): ParsedFamily
  /** the value of the series of `name` whose labels include `labels`; 0 when that series is absent */
  value(name: string, labels?: Record<string, string>): number
  /** a histogram series' count (its `_count`), 0 when absent */
  count(name: string, labels?: Record<string, string>): number
  /** a histogram series' sum (its `_sum`), 0 when absent */
  sum(name: string, labels?: Record<string, string>): number
  /** a histogram series' cumulative count at bucket `le`, 0 when absent */
  bucket(name: string, le: string, labels?: Record<string, string>): number
}

const matches = (sample: ParsedSample, labels: Record<string, string>): boolean =>
  Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v)

export function parseScrape (text: string): Scrape {
  const families = parsePrometheusTextFormat(text)
  const series = parsePrometheusTextFormat(text.replace(/^(# TYPE \S+) histogram$/gm, '$1 untyped'))
  const family = (name: string): ParsedFamily => {
    const f = families.find(f => f.name === name)
    if (f === undefined) throw new Error(`no ${name} in the scrape`)
    return f
  }
  // the untyped parse starts a new family whenever the name changes: one per label set
  const sample = (name: string, labels: Record<string, string>): ParsedSample | undefined =>
    series.filter(f => f.name === name).flatMap(f => f.metrics).find(m => matches(m, labels))
  const value = (name: string, labels: Record<string, string> = {}): number => Number(sample(name, labels)?.value ?? 0)
  return {
    families,
    series,
    text,
    family,
    value,
    count: (name, labels = {}) => value(`${name}_count`, labels),
    sum: (name, labels = {}) => value(`${name}_sum`, labels),
    bucket: (name, le, labels = {}) => value(`${name}_bucket`, { ...labels, le })
  }
}

/** GET /metrics on the HTTP port with `bearer` (an admin token of the node unless given). */
export async function fetchMetrics (node: Threadline, bearer: string | null = token(node, 'prometheus', { role: 'admin' })): Promise<Response> {
  return await fetch(`http://127.0.0.1:${node.httpPort}/metrics`, bearer === null ? {} : { headers: { authorization: `Bearer ${bearer}` } })
}

export async function scrape (node: Threadline): Promise<Scrape> {
  const res = await fetchMetrics(node)
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${await res.text()}`)
  return parseScrape(await res.text())
}

/** Scrapes until `condition` holds of a scrape (figures that move after an answer, off its path). */
export async function untilScrape (node: Threadline, condition: (s: Scrape) => boolean, what: string, ms?: number): Promise<Scrape> {
  let last: Scrape | null = null
  await waitFor(async () => condition(last = await scrape(node)), what, ms, 50)
  return last as unknown as Scrape
}

/** The node's `node` label. */
export const nodeIdOf = (node: Threadline): string => node.services.get(METRICS).nodeId
