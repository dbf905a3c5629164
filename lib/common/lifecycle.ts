// The words of a worker's life that the config, the supervisor and the public API
// share: its phases, why it left, how a reload ended. Types only.

export type WorkerPhase = 'starting' | 'ready' | 'draining'

/** How a reload() call ended: replaced every worker, rolled back, queued or ignored behind a running one, or cut short by a shutdown. */
export type ReloadOutcome = 'complete' | 'aborted' | 'queued' | 'ignored' | 'stopped'

/** What the supervisor asked of a worker before it exited, if anything. */
export type Leaving =
  | 'drained' // shutdown, reload, scale-down: drained on request
  | 'recycled' // replaced for its memory or request count, drained on request
  | 'hung' // killed: no heartbeat in time
  | 'not-ready' // killed: not ready in time
  | 'listen-failed' // killed: its app could not listen (a port in use) and did not exit

/** Why a worker was drained: what the supervisor (or a signal sent to the worker alone) was doing. */
export type DrainCause =
  | 'reload' // replaced by a worker of the new generation
  | 'rollback' // of a reload that failed: a new worker stopped, or replaced by an old one
  | 'scale' // its slot was removed
  | 'recycle' // replaced for its memory or request count
  | 'shutdown' // the cluster stops
  | 'signal' // a signal sent to the worker alone; it started draining by itself

/** The `reason` of a worker.exit event. */
export type ExitReason =
  | Leaving
  | 'drain-timeout' // asked to drain, killed at the deadline
  | 'drain-cut' // asked to drain, exited by itself with requests or connections still open (its app's own signal handler, say)
  | 'crashed' // exited by itself with a non-zero code
  | 'signaled' // killed by a signal the supervisor did not send
  | 'exited' // exited by itself with code 0

/** How a worker's exit is told in crash-rate.exceeded and boot.failed. */
export interface ExitRecord { workerId: number, code: number | null, signal: string | null, reason: ExitReason }

/** Something worth knowing about the config that is not an error: config.warning's fields. */
export interface Warning { key: string, message: string, [field: string]: unknown }

/** What each hook of a config is told (it runs in the primary). */
export interface HookFacts {
  onWorkerFork: { workerId: number, pid: number }
  onWorkerReady: { workerId: number, pid: number }
  onWorkerExit: { workerId: number, pid: number, code: number | null, signal: string | null, reason: ExitReason }
  onReload: { generation: number }
  onShutdown: { signal: string }
  onPrimaryStart: Record<string, never>
}

export type HookName = keyof HookFacts

/**
 * How an upgrade of the primary ended (`cluster-run upgrade`, SIGUSR2): complete (the new
 * primary serves: its pid and Node version), aborted (the new primary failed; this one
 * serves on) or refused (not started: another upgrade or a reload runs, say).
 */
export type UpgradeOutcome =
  | { outcome: 'complete', pid: number, node: string, durationMs: number }
  | { outcome: 'aborted' | 'refused', reason: string, durationMs: number }
