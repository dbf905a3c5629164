// The default logger for overload events: pino writing synchronously to fd 1.
// Not process.stdout: pino's own destination avoids the stream machinery and
// a sync write is not lost if the worker exits right after an event.
import { pino } from 'pino'
import type { MiddlewareLogger } from './options.js'

let shared: MiddlewareLogger | undefined

/** One logger for every guard of the process, created on first use. */
export function defaultLogger (): MiddlewareLogger {
  shared ??= pino({ name: 'cluster-run' }, pino.destination({ dest: 1, sync: true }))
  return shared
}
