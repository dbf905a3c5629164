// The public face of cluster-run.
export { run, type ClusterHandle } from './run.js'
export { defineConfig, type UserConfig, type Config } from './config/schema.js'
export { ConfigError, UsageError, ClusterError } from './common/errors.js'
export type { WorkerInfo } from './supervisor/supervisor.js'
export type { ClusterStatus, WorkerStatus } from './supervisor/status.js'
export type { WorkerPhase, ReloadOutcome, ExitReason } from './common/lifecycle.js'
export type { EventName, EventFields } from './supervisor/events.js'
export type { HeartbeatStats } from './protocol/messages.js'
export { ready, onShutdown, onDrain, isDraining, workerId, exposeMetrics, drainWebSockets, drainSocketIo, type DrainWebSocketsOptions } from './worker/api.js'
export {
  expressGuard, fastifyGuard, koaGuard, protect, createGuard, Guard, MiddlewareOptionsError,
  type GuardOptions, type HttpGuardOptions, type GuardStats,
} from './middleware/index.js'
