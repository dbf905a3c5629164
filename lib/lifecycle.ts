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

/** The `reason` of a worker.exit event. */
export type ExitReason =
  | Leaving
  | 'drain-timeout' // asked to drain, killed at the deadline
  | 'crashed' // exited by itself with a non-zero code
  | 'signaled' // killed by a signal the supervisor did not send
  | 'exited' // exited by itself with code 0
