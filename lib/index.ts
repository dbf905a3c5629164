// The public face of cluster-run.
export { run, type ClusterHandle } from './run.js'
export { defineConfig, type UserConfig, type Config } from './config/schema.js'
export { ConfigError, UsageError, ClusterError } from './errors.js'
export type { WorkerInfo } from './supervisor/supervisor.js'
export type { ClusterStatus, WorkerStatus } from './control/status.js'
export type { WorkerPhase, ReloadOutcome, ExitReason } from './lifecycle.js'
export type { EventName } from './log.js'
export type { HeartbeatStats } from './protocol.js'
export { ready, onShutdown, onDrain, isDraining, workerId, exposeMetrics, drainWebSockets, drainSocketIo, type DrainWebSocketsOptions } from './worker/api.js'
export {
  expressGuard, fastifyGuard, koaGuard, protect, createGuard, Guard, MiddlewareOptionsError,
  type GuardOptions, type HttpGuardOptions, type GuardStats,
} from './middleware/index.js'
