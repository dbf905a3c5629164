// The one description of cluster-run's configuration: the zod schema, its defaults,
// and the types inferred from it (never written twice). Written with zod/mini: the same
// validation and messages as zod's classic API in about a quarter of the bundled code,
// and quicker to build; the config is read at every start and reload.
import * as z from 'zod/mini'
import { en } from 'zod/locales'
import type { HookFacts, HookName, Warning } from '../common/lifecycle.js'
import { NAME_PATTERN } from '../common/cluster-paths.js'

z.config(en()) // zod/mini comes without its messages

const positiveInt = z.int().check(z.positive())
const nonNegativeInt = z.int().check(z.nonnegative())
const nonEmpty = z.string().check(z.minLength(1))

export const restartBackoffSchema = z.strictObject({
  /** delay before the first restart of a slot */
  initialMs: z._default(nonNegativeInt, 100),
  /** the cap of the delay */
  maxMs: z._default(nonNegativeInt, 15_000),
  /** multiplier per consecutive crash of the same slot */
  factor: z._default(z.number().check(z.gte(1)), 2),
  /** ± fraction of random spread, so crashed workers do not restart in lockstep */
  jitter: z._default(z.number().check(z.gte(0), z.lte(1)), 0.1),
  /** a worker that stayed up this long resets its slot's backoff */
  resetAfterMs: z._default(nonNegativeInt, 30_000),
})

export const maxCrashRateSchema = z.strictObject({
  /** crashes tolerated in the window; one more stops the cluster */
  crashes: z._default(positiveInt, 5),
  /** the sliding window */
  windowMs: z._default(positiveInt, 60_000),
})

export const metricsSchema = z.strictObject({
  /** the port of the primary's own HTTP server for /metrics, /healthz and /readyz (0: any free port) */
  port: z.int().check(z.gte(0), z.lte(65535)),
  /** where it listens: loopback unless set */
  host: z._default(nonEmpty, '127.0.0.1'),
  /** how long a scrape waits for each worker's app metrics */
  timeoutMs: z._default(positiveInt, 1000),
  /** the dashboard page at /dashboard, and the 15 minutes of history it charts */
  dashboard: z._default(z.boolean(), true),
  /** the dashboard's actions (with the token): on by default only where host is loopback */
  actions: z.optional(z.boolean()),
})

export const stickySchema = z.strictObject({
  /** the client's address, or a request header (behind a proxy: { header: 'x-forwarded-for' }) */
  by: z._default(z.union([
    z.literal('address'),
    z.strictObject({ header: z.string().check(z.regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { error: 'Invalid input: expected a header name' })) }),
  ], { error: 'Invalid input: expected "address" or { header: "<name>" }' }), 'address'),
})

const SIZE = /^(\d+(?:\.\d+)?)\s*([KMG])i?B?$/i
/** A size in bytes: a number, or text with a unit (K, M, G: powers of 1024). */
const size = z.pipe(
  z.union([positiveInt, z.string().check(z.regex(SIZE, { error: 'Invalid input: expected bytes, or a size such as "10M" (units K, M, G)' }))], { error: 'Invalid input: expected bytes, or a size such as "10M" (units K, M, G)' }),
  z.transform((value) => {
    if (typeof value === 'number') return value
    const [, n, unit] = SIZE.exec(value)!
    return Math.round(Number(n) * 1024 ** ('KMG'.indexOf(unit.toUpperCase()) + 1))
  })
)

/** What rotating-file-stream takes: hours that divide a day, minutes and seconds that divide an hour, or days. */
const INTERVAL = /^(?:\d+d|(?:1|2|3|4|6|8|12|24)h|(?:1|2|3|4|5|6|10|12|15|20|30|60)[ms])$/

export const rotateSchema = z.strictObject({
  /** rotate the file when it reaches this size */
  size: z.optional(size),
  /** rotate the file every interval: '1d', '12h', '30m' */
  interval: z.optional(z.string().check(z.regex(INTERVAL, { error: 'Invalid input: expected an interval such as "1d", "12h" or "30m" (hours that divide a day, minutes that divide an hour)' }))),
  /** rotated files kept (file.1 … file.N); older ones are removed */
  keep: z._default(positiveInt, 5),
})

export const historySchema = z.strictObject({
  /** lines kept for `cluster-run logs` */
  lines: z._default(positiveInt, 1000),
  /** and at most these many bytes of them */
  bytes: z._default(size, 1024 * 1024),
})

export const logSchema = z.strictObject({
  level: z._default(z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), 'info'),
  /** human-readable lines; unset: when the primary's stdout is a terminal and no log file is written */
  pretty: z.optional(z.boolean()),
  /** 'capture': the primary reads the workers' stdout and stderr and writes their lines, attributed; 'inherit': they write to its stdout and stderr themselves */
  workerOutput: z._default(z.enum(['capture', 'inherit']), 'capture'),
  /** write the log to the primary's stdout (false: to log.file only) */
  stdout: z._default(z.boolean(), true),
  /** a file the log is written to as well (or instead: stdout: false) */
  file: z.optional(nonEmpty),
  /** warnings, errors and the workers' stderr go here instead of log.file */
  errorFile: z.optional(nonEmpty),
  rotate: z._default(rotateSchema, rotateSchema.parse({})),
  history: z._default(historySchema, historySchema.parse({})),
})

const hook = <H extends HookName>() => z.custom<(facts: HookFacts[H]) => unknown>((v) => typeof v === 'function', { message: 'Invalid input: expected a function' })

export const configSchema = z.strictObject({
  /** the app's entry file (.js, .mjs, .cjs, .ts, .mts, .cts), relative to cwd */
  app: nonEmpty,
  /** the cluster's name, for `cluster-run ls/status/reload/scale/stop` (default: the app's package name, else the entry's base name) */
  name: z.optional(z.string().check(z.regex(NAME_PATTERN, { error: 'Invalid input: expected letters, digits, ".", "_" or "-" (at most 64, not starting with "." or "-")' }))),
  /** the control socket: false turns it off, a string sets its path (default: <dir>/<name>.sock) */
  controlSocket: z.optional(z.union([z.literal(false), nonEmpty], { error: 'Invalid input: expected false or a socket path' })),
  /** arguments passed to the app (its process.argv.slice(2)) */
  args: z._default(z.array(z.string()), []),
  /** extra node flags for the workers */
  execArgv: z._default(z.array(z.string()), []),
  /** extra environment variables for the workers; numbers and booleans become strings, as Compose makes them */
  env: z._default(z.record(z.string(), z.pipe(z.union([z.string(), z.number(), z.boolean()], { error: 'Invalid input: expected a string, number or boolean' }), z.transform(String))), {}),
  /** directory the app is resolved from and the workers run in */
  cwd: z.optional(nonEmpty),
  /** number of workers, or 'auto': the CPUs this process may use (affinity and cgroup quota) */
  workers: z._default(z.union([positiveInt, z.literal('auto')], { error: 'Invalid input: expected a positive integer or "auto"' }), 'auto'),
  /**
   * 'rr': the primary hands out connections round-robin; 'none': the kernel does, from one queue;
   * 'reuseport': the kernel does, from one queue per worker (SO_REUSEPORT; Linux, Node 22.12+, else 'rr');
   * 'sticky': the primary hands each client to the same slot
   */
  schedulingPolicy: z._default(z.enum(['rr', 'none', 'reuseport', 'sticky']), 'rr'),
  /** with schedulingPolicy 'sticky': what a client is known by */
  sticky: z._default(stickySchema, stickySchema.parse({})),
  /** 'listening': ready when the app listens; 'message': ready when the app calls ready() */
  readiness: z._default(z.enum(['listening', 'message']), 'listening'),
  restartBackoff: z._default(restartBackoffSchema, restartBackoffSchema.parse({})),
  maxCrashRate: z._default(maxCrashRateSchema, maxCrashRateSchema.parse({})),
  /** a worker not ready this long after its fork is killed and counted as a crash */
  readyTimeoutMs: z._default(positiveInt, 10_000),
  /** how long a draining worker may take before it is killed */
  shutdownTimeoutMs: z._default(positiveInt, 10_000),
  /** on SIGTERM: readiness turns 503 at once, the workers serve this long more, then they drain */
  shutdownDelayMs: z._default(nonNegativeInt, 0),
  /** /readyz answers 200 while at least this many workers are ready */
  minReadyWorkers: z._default(positiveInt, 1),
  /** Prometheus metrics and health probes, served by the primary on a port of its own (off unless set) */
  metrics: z.optional(metricsSchema),
  /** a worker whose last heartbeat is older than this is killed as hung (0: off) */
  heartbeatTimeoutMs: z._default(nonNegativeInt, 30_000),
  /** replace a worker whose RSS exceeds this many MiB (0: off) */
  maxMemoryMb: z._default(nonNegativeInt, 0),
  /** replace a worker after this many requests (0: off) */
  maxRequests: z._default(nonNegativeInt, 0),
  /** add up to this many requests, at random per worker, so workers do not recycle together */
  maxRequestsJitter: z._default(nonNegativeInt, 0),
  /** a worker exiting with one of these codes stops the cluster at once (a boot error) */
  stopOnExitCodes: z._default(z.array(z.int()), []),
  log: z._default(logSchema, logSchema.parse({})),
  /** hooks, run in the primary; one that throws is logged as hook.error and ignored */
  onWorkerFork: z.optional(hook<'onWorkerFork'>()),
  onWorkerReady: z.optional(hook<'onWorkerReady'>()),
  onWorkerExit: z.optional(hook<'onWorkerExit'>()),
  onReload: z.optional(hook<'onReload'>()),
  onShutdown: z.optional(hook<'onShutdown'>()),
  /** runs once in the primary when it starts, before any fork, never again on reload (e.g. @socket.io/cluster-adapter's setupPrimary()) */
  onPrimaryStart: z.optional(hook<'onPrimaryStart'>()),
})

/** What a user writes: every key optional but `app`. */
export type UserConfig = z.input<typeof configSchema>
/** What the supervisor runs with: every default applied, workers resolved to a number. */

export type Config = Omit<z.output<typeof configSchema>, 'workers' | 'cwd' | 'name' | 'controlSocket'> & {
  workers: number
  cwd: string
  name: string
  /** the control socket's path, or false when off */
  controlSocket: string | false
  /** why `workers` has its value */
  workersReason: string
  /** the config file it came from, if any */
  configFile?: string
  /** where `app` came from: the command line, a config file, run(), the package's "main" */
  appSource: string
  /** what reading it found worth a warning (files it ignored) */
  warnings?: Warning[]
}

/** Typed helper for config files: `export default defineConfig({ ... })`. */
export function defineConfig (config: UserConfig): UserConfig {
  return config
}
