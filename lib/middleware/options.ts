// Options shared by every adapter, validated once when the middleware is created.
import * as z from 'zod'
import { MiddlewareOptionsError } from './options-error.js'
import { formatIssues } from '../common/issues.js'

/** The part of a pino logger the middleware uses; any pino logger fits. */
export interface MiddlewareLogger {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
}

function isLogger (value: unknown): value is MiddlewareLogger {
  if (value === null || typeof value !== 'object') return false
  const logger = value as Record<string, unknown>
  return typeof logger.info === 'function' && typeof logger.warn === 'function'
}

// One message per field, so the error says what was expected in plain words.
function integer (min: number, max: number, expected: string) {
  const error = `expected ${expected}`
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error })
}

function positive (expected: string) {
  const error = `expected ${expected}`
  return z.number({ error }).positive({ error })
}

function fraction (expected: string) {
  const error = `expected ${expected}`
  return z.number({ error }).positive({ error }).max(1, { error })
}

function healthPath (fallback: string) {
  const error = 'expected a path starting with "/" (no query string), or false to disable'
  return z.union([z.literal(false), z.string().regex(/^\/[^?#\s]*$/, { error })], { error }).default(fallback)
}

export const guardOptionsSchema = z.strictObject({
  /**
   * shed when a request would have waited longer than this for the event loop
   * (ms): the lag of the current turn for a connection already served; for the
   * first request of a new connection, how long the loop has been behind
   * (since its timer last ran on time or it last waited for I/O), since the
   * connection may have waited that long in the accept queue or the primary.
   */
  maxEventLoopDelayMs: positive('a number of milliseconds > 0').optional(),
  /**
   * shed while the event loop has been busy more than this share of the time
   * over the last 300 ms (performance.eventLoopUtilization()), e.g. 0.98;
   * 1 never sheds.
   */
  maxEventLoopUtilization: fraction('a number > 0 and <= 1 (a share of the time, e.g. 0.98)').optional(),
  /** shed when this many requests are already in flight in this worker. */
  maxInFlight: integer(1, Number.MAX_SAFE_INTEGER, 'an integer >= 1').optional(),
  /** shed while V8's used heap is above this many bytes (sampled). */
  maxHeapUsedBytes: integer(1, Number.MAX_SAFE_INTEGER, 'an integer number of bytes >= 1').optional(),
  /** shed while the resident set size is above this many bytes (sampled). */
  maxRssBytes: integer(1, Number.MAX_SAFE_INTEGER, 'an integer number of bytes >= 1').optional(),
  /** value of Retry-After on 503 responses, in seconds. */
  retryAfterSeconds: integer(0, 86_400, 'an integer number of seconds between 0 and 86400').default(5),
  /** liveness probe path, answered 200 while the process serves requests. */
  livenessPath: healthPath('/healthz'),
  /** readiness probe path, answered 503 while draining or overloaded. */
  readinessPath: healthPath('/readyz'),
  /** 'respond': the middleware answers 503 itself; 'delegate': hand an http-errors error to the framework. */
  errors: z.enum(['respond', 'delegate'], { error: 'expected "respond" or "delegate"' }).default('respond'),
  /** how long every limit must stay clear before an overload episode ends (ms). */
  recoveryMs: integer(0, 600_000, 'an integer number of milliseconds between 0 and 600000').default(1000),
  /** how often memory is sampled at most (ms). */
  memorySampleIntervalMs: integer(100, 10_000, 'an integer number of milliseconds between 100 and 10000').default(250),
  /** pino logger for overload.start / overload.end events; default: pino to fd 1. */
  logger: z.custom<MiddlewareLogger>(isLogger, {
    error: 'expected a pino logger (an object with info() and warn() methods)',
  }).optional(),
})

/** What callers pass in. */
export type GuardOptions = z.input<typeof guardOptionsSchema>
/** Options with defaults applied. */
export type ResolvedGuardOptions = z.output<typeof guardOptionsSchema>

/** node:http has no error handling to delegate to, so its adapter takes no `errors` key. */
export const httpOptionsSchema = guardOptionsSchema.omit({ errors: true })
export type HttpGuardOptions = z.input<typeof httpOptionsSchema>

export function parseOptions<S extends z.ZodObject> (schema: S, input: unknown): z.output<S> {
  const value = input === undefined ? {} : input
  const knownKeys = Object.keys(schema.shape)
  const result = schema.safeParse(value)
  if (!result.success) throw new MiddlewareOptionsError(formatIssues(result.error.issues, value, { knownKeys: () => knownKeys }))
  const options = result.data as Record<string, unknown>
  if (options.livenessPath !== false && options.livenessPath === options.readinessPath) {
    throw new MiddlewareOptionsError([
      `readinessPath: expected a path different from livenessPath (given: ${JSON.stringify(options.readinessPath)})`,
    ])
  }
  return result.data
}
