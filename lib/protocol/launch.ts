// Both ends of the launch contract between the primary and a worker: the environment
// names, the node flags that load TypeScript support and the preload, and how the
// worker reads them back. The primary calls launchOptions(); the preload readLaunch().
import path from 'node:path'

const ENV = {
  workerId: 'CLUSTER_RUN_WORKER_ID',
  heartbeatMs: 'CLUSTER_RUN_HEARTBEAT_MS',
  /** the request count at which this worker is recycled: it beats at once on reaching it */
  requestLimit: 'CLUSTER_RUN_REQUEST_LIMIT',
  shutdownTimeoutMs: 'CLUSTER_RUN_SHUTDOWN_TIMEOUT_MS',
  listens: 'CLUSTER_RUN_LISTENS',
  shutdownDelayMs: 'CLUSTER_RUN_SHUTDOWN_DELAY_MS',
  captured: 'CLUSTER_RUN_CAPTURED',
} as const

const TS_ENTRY = /\.[mc]?ts$/

type Listens = 'cluster' | 'sticky' | 'reuseport'
const LISTENS = new Set<string>(['cluster', 'sticky', 'reuseport'])

/** What a worker is told at launch. */
export interface LaunchSettings {
  /** the slot, 0..N-1, stable across restarts */
  workerId: number
  /** how often to beat, ms (0: never) */
  heartbeatMs: number
  /** the request count at which it will be recycled (0: never) */
  requestLimit: number
  /** how long a drain may take before the primary kills the worker */
  shutdownTimeoutMs: number
  /**
   * how the app's listen() on a TCP port is served: 'cluster', by Node's cluster (rr,
   * none); 'sticky', by the primary, which hands each connection over; 'reuseport', on a
   * socket of the worker's slot that the primary binds with SO_REUSEPORT
   */
  listens: Listens
  /** on its own SIGTERM, how long the worker serves on, unready, before it drains */
  shutdownDelayMs: number
  /** the primary reads its stdout and stderr (pipes), line by line */
  captured: boolean
}

export interface LaunchTarget {
  app: string
  execArgv: string[]
  env: Record<string, string>
}

/** The worker's node flags and environment, for cluster.setupPrimary() and cluster.fork(). */
export function launchOptions (target: LaunchTarget, settings: LaunchSettings): { execArgv: string[], env: Record<string, string> } {
  return {
    execArgv: [...process.execArgv, ...loaderFlags(target.app), ...target.execArgv],
    env: {
      ...target.env,
      [ENV.workerId]: String(settings.workerId),
      [ENV.heartbeatMs]: String(settings.heartbeatMs),
      [ENV.requestLimit]: String(settings.requestLimit),
      [ENV.shutdownTimeoutMs]: String(settings.shutdownTimeoutMs),
      [ENV.listens]: settings.listens,
      [ENV.shutdownDelayMs]: String(settings.shutdownDelayMs),
      [ENV.captured]: settings.captured ? '1' : '0',
    },
  }
}

/** What the primary said at launch; undefined in a process cluster-run did not start. */
export function readLaunch (env: NodeJS.ProcessEnv = process.env): LaunchSettings | undefined {
  const id = env[ENV.workerId]
  if (id === undefined) return undefined
  return {
    workerId: Number(id),
    heartbeatMs: Number(env[ENV.heartbeatMs]) || 0,
    requestLimit: Number(env[ENV.requestLimit]) || 0,
    shutdownTimeoutMs: Number(env[ENV.shutdownTimeoutMs]) || 10_000,
    listens: LISTENS.has(env[ENV.listens] ?? '') ? env[ENV.listens] as Listens : 'cluster',
    shutdownDelayMs: Number(env[ENV.shutdownDelayMs]) || 0,
    captured: env[ENV.captured] === '1',
  }
}

/** The worker's --import flags: TypeScript support for TS entries, then cluster-run's preload. */
function loaderFlags (app: string): string[] {
  const flags: string[] = []
  // tsx resolved from cluster-run itself: the app's folder may not have it.
  if (TS_ENTRY.test(app)) flags.push('--import', import.meta.resolve('tsx'))
  flags.push('--import', preloadUrl())
  return flags
}

/** Set by the CLI's bundle build: where the preload is from the bundle. */
declare const CLUSTER_RUN_PRELOAD: string | undefined

function preloadUrl (): string {
  if (typeof CLUSTER_RUN_PRELOAD === 'string') return new URL(CLUSTER_RUN_PRELOAD, import.meta.url).href
  // The same extension as this file: .js when built, .ts when run from source.
  const ext = path.extname(new URL(import.meta.url).pathname)
  return new URL(`../worker/preload${ext}`, import.meta.url).href
}
