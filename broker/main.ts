// `npm start`: one node, broker and sidecar in one process.
import { ConfigError, loadConfig } from './config.js'
import { createLogger } from './logger.js'
import { startThreadline } from './server.js'

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
  const node = await startThreadline(config, log)
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
