// Series whose numbers live in plain fields and are read when Prometheus scrapes. On the
// send path prom-client's own metrics cost 0.5–0.8 µs per observation (labels hashed on
// every call, pre-bound children included); a send event counted here costs ~40 ns. The
// node's prom-client Registry renders these like its own: all it asks of a metric is
// `name`, `help`, `type` and `get()` (and `reset()` for resetMetrics).
import type { Metric, Registry } from 'prom-client'

export type Labels = Readonly<Record<string, string>>
/** One series of a counter or gauge: its labels and its value now. */
export type Sample = readonly [labels: Labels, value: number]

interface Value { labels: Labels, value: number, metricName?: string }
interface Snapshot {
  name: string
  help: string
  type: 'counter' | 'gauge' | 'histogram'
  values: Value[]
  aggregator: 'sum'
}

abstract class ReadAtScrape {
  constructor (readonly name: string, readonly help: string) {}
  abstract readonly type: Snapshot['type']
  protected abstract values (): Promise<Value[]> | Value[]

  async get (): Promise<Snapshot> {
    let values: Value[]
    try {
      values = await this.values()
    } catch {
      // a part that can't answer now (Redis hung): the series is absent from this scrape,
      // which Prometheus reads as "unknown", rather than the whole scrape failing
      values = []
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' }
  }

  /** the numbers belong to the parts that keep them */
  reset (): void {}

  /** Adds this series to `registry`, which renders it with its own. */
  registerIn (registry: Registry): this {
    registry.registerMetric(this as unknown as Metric)
    return this
  }
}

/** A counter or gauge whose samples `read` answers at each scrape. */
export class Sampled extends ReadAtScrape {
  constructor (name: string, help: string, readonly type: 'counter' | 'gauge', private readonly read: () => Promise<Iterable<Sample>> | Iterable<Sample>) {
    super(name, help)
  }

  protected async values (): Promise<Value[]> {
    return [...await this.read()].map(([labels, value]) => ({ labels, value }))
  }
}

/** Counts by one label's value: `add` on the hot path, read at scrape. */
export class Tally {
  readonly #counts = new Map<string, number>()

  /** `known`: values present from the start (at 0), so rate() and alerts see them before the first one */
  constructor (known: readonly string[] = []) {
    for (const k of known) this.#counts.set(k, 0)
  }

  add (key: string, n = 1): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + n)
  }

  samples (label: string, fixed: Labels = {}): Sample[] {
    return [...this.#counts].map(([key, n]) => [{ ...fixed, [label]: key }, n])
  }
}

/** One histogram series: counts per bucket (not cumulative), their sum and count. */
export class Buckets {
  readonly #counts: Float64Array
  sum = 0
  count = 0

  /** `bounds`: the buckets' upper bounds (`le`), ascending */
  constructor (readonly bounds: readonly number[]) {
    this.#counts = new Float64Array(bounds.length + 1)
  }

  observe (value: number): void {
    const bounds = this.bounds
    let i = 0
    // values cluster in the low buckets: a forward scan ends within a few steps
    while (i < bounds.length && value > (bounds[i] as number)) i++
    this.#counts[i] = (this.#counts[i] as number) + 1
    this.sum += value
    this.count++
  }

  /** cumulative counts per bound, the last for +Inf */
  cumulative (): number[] {
    let running = 0
    return Array.from(this.#counts, (n) => (running += n))
  }
}

/** A histogram whose series (one Buckets per label set) are read at each scrape. */
export class BucketHistogram extends ReadAtScrape {
  readonly type = 'histogram'

  constructor (name: string, help: string, private readonly series: ReadonlyArray<readonly [Labels, Buckets]>) {
    super(name, help)
  }

  protected values (): Value[] {
    const out: Value[] = []
    for (const [labels, buckets] of this.series) {
      const cumulative = buckets.cumulative()
      buckets.bounds.forEach((le, i) => out.push({ labels: { ...labels, le: String(le) }, value: cumulative[i] as number, metricName: `${this.name}_bucket` }))
      out.push({ labels: { ...labels, le: '+Inf' }, value: cumulative[buckets.bounds.length] as number, metricName: `${this.name}_bucket` })
      out.push({ labels, value: buckets.sum, metricName: `${this.name}_sum` })
      out.push({ labels, value: buckets.count, metricName: `${this.name}_count` })
    }
    return out
  }
}
