// One pino factory for the primary's log: an event a line (the events: supervisor/events.ts).
import pino, { type Logger } from 'pino'

export type LogLevel = pino.LevelWithSilent

/**
 * The primary's logger: JSON lines handed to `destination` whole, one write each (it
 * decides where they go and how they look: logs/sink.ts).
 */
export function createLogger (level: LogLevel, destination: { write: (line: string) => void }): Logger {
  // The event name is the message: pretty mode (pino-pretty) prints it first on the line. No `pid` of
  // the primary on every line (a worker's event has the worker's): primary.start says it.
  return pino({ level, messageKey: 'event', base: null, timestamp: pino.stdTimeFunctions.isoTime }, destination)
}

export type { Logger }
