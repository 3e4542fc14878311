// `npm start`: one node, broker and sidecar in one process.
import { ConfigError, loadConfig } from './config.js'
import { createLogger } from './logger.js'
import { startThreadline } from './server.js'
import { logUnhandledRejections } from './unhandled-rejections.js'
import { WebBundle } from '../sync-api/web/bundle.js'

async function main (): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`threadline: configuration error: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
  const log = createLogger(config.logLevel)
  // a crash would drop every connection of the node: see unhandled-rejections.ts
  logUnhandledRejections(log)
  // the web page is built (when its sources changed) while the node starts, so its first
  // visitor doesn't wait for it; a failed build costs the page only, never the node
  const web = new WebBundle()
  const started = Date.now()
  web.ready().then(
    () => log.info({ dir: web.outDir, ms: Date.now() - started }, 'web page ready at /'),
    (err: unknown) => log.error({ err }, 'the web page could not be built: / answers 503, everything else works')
  )
  const node = await startThreadline(config, log, { web })
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'draining')
    node.close().then(() => process.exit(0), (err: unknown) => {
      log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main().catch((err: unknown) => {
  process.stderr.write(`threadline: failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
