// One pino factory for the primary's log: an event a line (the events: supervisor/events.ts).
import pino, { type Logger } from 'pino'
import { createRequire } from 'node:module'
import type PinoPretty from 'pino-pretty'

export interface LogOptions {
  level: pino.LevelWithSilent
  pretty: boolean
}

export function createLogger ({ level, pretty: human }: LogOptions): Logger {
  // Synchronous writes to fd 1: a handful of lines per lifecycle event, and none may
  // be lost when the primary exits right after a fatal event.
  // pino-pretty only when asked for: it weighs ~10 MB in a primary that may run for months.
  const stream = human
    ? (createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty)({ sync: true, destination: 1, ignore: 'hostname', messageKey: 'event' })
    : pino.destination({ dest: 1, sync: true })
  // The event name is the message: pino-pretty prints it first on the line.
  return pino({ level, messageKey: 'event', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, stream)
}

export type { Logger }
