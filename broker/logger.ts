import { pino } from 'pino'
export type Logger = pino.Logger

/** The one pino logger; parts take child loggers from it. */
export function createLogger (level: string): Logger {
  return pino({ level, base: { service: 'threadline' } })
}
