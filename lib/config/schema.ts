// The one description of cluster-run's configuration: the zod schema, its defaults,
// and the types inferred from it (never written twice).
import { z } from 'zod'
import type { ExitReason } from '../lifecycle.js'
import { NAME_PATTERN } from '../control/paths.js'

const positiveInt = z.number().int().positive()
const nonNegativeInt = z.number().int().nonnegative()

export const restartBackoffSchema = z.strictObject({
  /** delay before the first restart of a slot */
  initialMs: nonNegativeInt.default(100),
  /** the cap of the delay */
  maxMs: nonNegativeInt.default(15_000),
  /** multiplier per consecutive crash of the same slot */
  factor: z.number().min(1).default(2),
  /** ± fraction of random spread, so crashed workers do not restart in lockstep */
  jitter: z.number().min(0).max(1).default(0.1),
  /** a worker that stayed up this long resets its slot's backoff */
  resetAfterMs: nonNegativeInt.default(30_000),
})

export const maxCrashRateSchema = z.strictObject({
  /** crashes tolerated in the window; one more stops the cluster */
  crashes: positiveInt.default(5),
  /** the sliding window */
  windowMs: positiveInt.default(60_000),
})

export const metricsSchema = z.strictObject({
  /** the port of the primary's own HTTP server for /metrics, /healthz and /readyz (0: any free port) */
  port: z.number().int().min(0).max(65535),
  /** where it listens: loopback unless set */
  host: z.string().min(1).default('127.0.0.1'),
  /** how long a scrape waits for each worker's app metrics */
  timeoutMs: positiveInt.default(1000),
})

export const stickySchema = z.strictObject({
  /** the client's address, or a request header (behind a proxy: { header: 'x-forwarded-for' }) */
  by: z.union([
    z.literal('address'),
    z.strictObject({ header: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { error: 'Invalid input: expected a header name' }) }),
  ], { error: 'Invalid input: expected "address" or { header: "<name>" }' }).default('address'),
})

export const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  pretty: z.boolean().default(false),
})

/** What a hook is told about a worker. */
export interface WorkerFacts { workerId: number, pid: number }
export interface WorkerExitFacts extends WorkerFacts { code: number | null, signal: string | null, reason: ExitReason }
const hook = <A>() => z.custom<(facts: A) => unknown>((v) => typeof v === 'function', { message: 'Invalid input: expected a function' })

export const configSchema = z.strictObject({
  /** the app's entry file (.js, .mjs, .cjs, .ts, .mts, .cts), relative to cwd */
  app: z.string().min(1),
  /** the cluster's name, for `cluster-run ls/status/reload/scale/stop` (default: the app's package name, else the entry's base name) */
  name: z.string().regex(NAME_PATTERN, { error: 'Invalid input: expected letters, digits, ".", "_" or "-" (at most 64, not starting with "." or "-")' }).optional(),
  /** the control socket: false turns it off, a string sets its path (default: <dir>/<name>.sock) */
  controlSocket: z.union([z.literal(false), z.string().min(1)], { error: 'Invalid input: expected false or a socket path' }).optional(),
  /** arguments passed to the app (its process.argv.slice(2)) */
  args: z.array(z.string()).default([]),
  /** extra node flags for the workers */
  execArgv: z.array(z.string()).default([]),
  /** extra environment variables for the workers */
  env: z.record(z.string(), z.string()).default({}),
  /** directory the app is resolved from and the workers run in */
  cwd: z.string().min(1).optional(),
  /** number of workers, or 'auto': the CPUs this process may use (affinity and cgroup quota) */
  workers: z.union([positiveInt, z.literal('auto')], { error: 'Invalid input: expected a positive integer or "auto"' }).default('auto'),
  /** 'rr': the primary hands out connections round-robin; 'none': the kernel does; 'sticky': the primary hands each client to the same slot */
  schedulingPolicy: z.enum(['rr', 'none', 'sticky']).default('rr'),
  /** with schedulingPolicy 'sticky': what a client is known by */
  sticky: stickySchema.default(stickySchema.parse({})),
  /** 'listening': ready when the app listens; 'message': ready when the app calls ready() */
  readiness: z.enum(['listening', 'message']).default('listening'),
  restartBackoff: restartBackoffSchema.default(restartBackoffSchema.parse({})),
  maxCrashRate: maxCrashRateSchema.default(maxCrashRateSchema.parse({})),
  /** a worker not ready this long after its fork is killed and counted as a crash */
  readyTimeoutMs: positiveInt.default(30_000),
  /** how long a draining worker may take before it is killed */
  shutdownTimeoutMs: positiveInt.default(10_000),
  /** on SIGTERM: readiness turns 503 at once, the workers serve this long more, then they drain */
  shutdownDelayMs: nonNegativeInt.default(0),
  /** /readyz answers 200 while at least this many workers are ready */
  minReadyWorkers: positiveInt.default(1),
  /** Prometheus metrics and health probes, served by the primary on a port of its own (off unless set) */
  metrics: metricsSchema.optional(),
  /** a worker whose last heartbeat is older than this is killed as hung (0: off) */
  heartbeatTimeoutMs: nonNegativeInt.default(30_000),
  /** replace a worker whose RSS exceeds this many MiB (0: off) */
  maxMemoryMb: nonNegativeInt.default(0),
  /** replace a worker after this many requests (0: off) */
  maxRequests: nonNegativeInt.default(0),
  /** add up to this many requests, at random per worker, so workers do not recycle together */
  maxRequestsJitter: nonNegativeInt.default(0),
  /** a worker exiting with one of these codes stops the cluster at once (a boot error) */
  stopOnExitCodes: z.array(z.number().int()).default([]),
  log: logSchema.default(logSchema.parse({})),
  /** hooks, run in the primary; one that throws is logged as hook.error and ignored */
  onWorkerFork: hook<WorkerFacts>().optional(),
  onWorkerReady: hook<WorkerFacts>().optional(),
  onWorkerExit: hook<WorkerExitFacts>().optional(),
  onReload: hook<{ generation: number }>().optional(),
  onShutdown: hook<{ signal: string }>().optional(),
  /** runs once in the primary when it starts, before any fork, never again on reload (e.g. @socket.io/cluster-adapter's setupPrimary()) */
  onPrimaryStart: hook<Record<string, never>>().optional(),
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
}

/** Typed helper for config files: `export default defineConfig({ ... })`. */
export function defineConfig (config: UserConfig): UserConfig {
  return config
}
