// The worker's state, shared through the process rather than a module variable:
// an app may load another copy of cluster-run than the one injected as a preload,
// and both copies must see the same drain flag and hooks.
import { EventEmitter } from 'node:events'

export type ShutdownHook = () => unknown

/** What exposeMetrics() takes: a prom-client Registry, or anything with its getMetricsAsJSON(). */
export interface MetricsSource {
  getMetricsAsJSON: () => Promise<unknown[]> | unknown[]
}

export interface WorkerState {
  /** true when this process is a worker started by cluster-run (the preload ran). */
  supervised: boolean
  /** set once a drain (shutdown, reload, scale-down, recycle) has begun; never unset. */
  draining: boolean
  /** requests received by every server of this worker. */
  requests: number
  /** requests the middleware refused (overload or draining). */
  refused: number
  /** requests whose client closed the connection before their handler ran: not run (see abandoned.ts). */
  abandoned: number
  /** connections accepted by every server of this worker. */
  accepted: number
  /** set during the shutdown delay: still serving, but reporting not ready. */
  unready: boolean
  /** registries given to exposeMetrics(), asked at every scrape. */
  metrics: MetricsSource[]
  /** cleanup callbacks registered with onShutdown(), run before the worker exits. */
  shutdownHooks: ShutdownHook[]
  /** callbacks registered with onDrain(), run when draining starts: the app closes its long-lived connections. */
  drainHooks: ShutdownHook[]
  /** emits 'drain' once, when draining starts. */
  events: EventEmitter
}

const KEY = Symbol.for('cluster-run.worker-state')

export function workerState (): WorkerState {
  const g = globalThis as unknown as Record<symbol, WorkerState | undefined>
  g[KEY] ??= newWorkerState()
  return g[KEY]
}

/** A state of nothing yet: the process's own (workerState) starts so, and so do the tests' private ones. */
export function newWorkerState (): WorkerState {
  return {
    supervised: false,
    draining: false,
    requests: 0,
    refused: 0,
    abandoned: 0,
    accepted: 0,
    unready: false,
    metrics: [],
    shutdownHooks: [],
    drainHooks: [],
    events: new EventEmitter(),
  }
}
