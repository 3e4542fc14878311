// The web chat page (clients/web/) bundled for browsers: the page's script with the SDK
// and MQTT.js in one ES module, built by esbuild into dist/web/ when it is missing or older
// than any of its sources. Nobody runs a build by hand: `npm start` builds it as the node
// starts, and the sidecar builds it on the first request for the page when it has not.
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** What the page is made of, in clients/web/: copied as they are, but for the script. */
export const WEB_STATIC_FILES = ['index.html', 'style.css'] as const
const ENTRY = 'app.ts'
/** what the build leaves in the out dir; `build.json` last, so it marks a complete build */
export const WEB_FILES = [...WEB_STATIC_FILES, 'app.js', 'app.js.map'] as const
const MANIFEST = 'build.json'
/** how long one look at the sources stands before the next request looks again */
const RECHECK_MS = 1000

interface Manifest {
  /** every source the build read, relative to the project root */
  inputs: string[]
  /** epoch ms when the build started: a source changed after it makes the bundle stale */
  started_ms: number
}

export interface WebBundleOptions {
  /** the project root (where clients/ lives); found from this file's place when omitted */
  root?: string
  /** where the bundle goes; `<root>/dist/web` when omitted */
  outDir?: string
}

/**
 * The directory holding clients/web: this file runs from sync-api/web/ under tsx and from
 * dist/sync-api/web/ once compiled, so the root is found by walking up rather than by a
 * fixed number of `..`.
 */
export function projectRoot (from = path.dirname(fileURLToPath(import.meta.url))): string | null {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'clients', 'web', ENTRY))) return dir
    if (path.dirname(dir) === dir) return null
  }
}

export class WebBundle {
  /** null when the sources are not there (a server deployed without clients/): no page */
  readonly root: string | null
  readonly outDir: string
  #ready: Promise<void> | null = null
  /** when the last check or build finished; Infinity while one runs */
  #checkedAt = Infinity

  constructor (opts: WebBundleOptions = {}) {
    this.root = opts.root ?? projectRoot()
    this.outDir = path.resolve(opts.outDir ?? path.join(this.root ?? '.', 'dist', 'web'))
  }

  /**
   * Resolves once the out dir holds a bundle no older than its sources (building it if
   * not). Concurrent callers share one check or build; its result stands for a second,
   * after which the sources are looked at again (an edited page is rebuilt on its next
   * load, without a restart); a failed build is tried again on the next call.
   */
  ready (): Promise<void> {
    if (this.#ready === null || Date.now() - this.#checkedAt > RECHECK_MS) {
      this.#checkedAt = Infinity
      this.#ready = this.#ensure().then(() => {
        this.#checkedAt = Date.now()
      }, (err: unknown) => {
        this.#ready = null
        throw err
      })
    }
    return this.#ready
  }

  /** true when a build is needed: no complete bundle, or a source newer than it */
  async stale (): Promise<boolean> {
    const root = this.#sources()
    let manifest: Manifest
    try {
      manifest = JSON.parse(await readFile(path.join(this.outDir, MANIFEST), 'utf8')) as Manifest
      await Promise.all(WEB_FILES.map(f => stat(path.join(this.outDir, f))))
    } catch {
      return true
    }
    const sources = [...manifest.inputs, ...WEB_STATIC_FILES.map(f => path.join('clients', 'web', f))]
    for (const input of sources) {
      try {
        if ((await stat(path.join(root, input))).mtimeMs > manifest.started_ms) return true
      } catch {
        return true // a source went away: the page must be built without it
      }
    }
    return false
  }

  #sources (): string {
    if (this.root === null) throw new Error(`the web page's sources (clients/web/${ENTRY}) are not in this installation`)
    return this.root
  }

  async #ensure (): Promise<void> {
    if (await this.stale()) await this.build()
  }

  /** Builds the page into the out dir. Each file is replaced by a rename, so two nodes
   * building at once (a cluster started together) never serve a torn file. */
  async build (): Promise<void> {
    // loaded here: a node that never serves the page never loads the bundler
    const esbuild = await import('esbuild')
    const startedMs = Date.now()
    const root = this.#sources()
    const src = path.join(root, 'clients', 'web')
    const result = await esbuild.build({
      absWorkingDir: root,
      entryPoints: [path.join(src, ENTRY)],
      outfile: path.join(this.outDir, 'app.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      // evergreen browsers, as the SDK promises
      target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
      minify: true,
      sourcemap: 'linked',
      metafile: true,
      write: false,
      logLevel: 'silent'
    })
    await mkdir(this.outDir, { recursive: true })
    const files: Array<[string, Uint8Array | string]> = result.outputFiles.map(f => [path.basename(f.path), f.contents])
    for (const name of WEB_STATIC_FILES) files.push([name, await readFile(path.join(src, name))])
    const manifest: Manifest = { inputs: Object.keys(result.metafile.inputs), started_ms: startedMs }
    files.push([MANIFEST, JSON.stringify(manifest)])
    for (const [name, contents] of files) await replaceFile(path.join(this.outDir, name), contents)
  }
}

async function replaceFile (file: string, contents: Uint8Array | string): Promise<void> {
  const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  await writeFile(temp, contents)
  await rename(temp, file)
}
