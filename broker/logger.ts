import { pino } from 'pino'
export type Logger = pino.Logger

/**
 * The one pino logger (JSON lines on stdout unless a test passes its own destination);
 * parts take child loggers from it. Redaction is a backstop: nothing is meant to log a
 * credential or a push token in the first place.
 */
export function createLogger (level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'threadline' },
    redact: { paths: ['req.headers.authorization', '*.password', '*.token', '*.push_token'], censor: '[redacted]' }
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}
