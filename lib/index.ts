// The public face of cluster-run.
export { run } from './run.js'
export type { ClusterHandle } from './handle.js'
export { defineConfig, type UserConfig, type Config } from './config/schema.js'
export { ConfigError, UsageError, ClusterError } from './common/errors.js'
export type { ClusterStatus, WorkerStatus } from './supervisor/status.js'
export type { WorkerPhase, ReloadOutcome, ExitReason } from './common/lifecycle.js'
export type { EventName, EventFields } from './supervisor/events.js'
export type { AnyEvent as ClusterEvent } from './supervisor/events.js'
export { ready, onShutdown, onDrain, isDraining, workerId, exposeMetrics, drainWebSockets, drainSocketIo, type DrainWebSocketsOptions } from './worker/api.js'
export {
  expressGuard, fastifyGuard, koaGuard, protect, createGuard, Guard, MiddlewareOptionsError,
  type GuardOptions, type HttpGuardOptions, type GuardStats,
} from './middleware/index.js'
