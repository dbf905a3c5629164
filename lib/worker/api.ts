// What an app may call from inside a worker. Cheap to import (no config or logging
// machinery), and harmless outside cluster-run: under plain `node app.js` ready()
// does nothing and onShutdown() hooks never run.
import { workerState, type ShutdownHook, type MetricsSource } from './state.js'
import { readLaunch } from './launch.js'

/**
 * Tell the primary this worker is ready for traffic. Needed with
 * `readiness: 'message'` (like PM2's wait_ready); harmless otherwise.
 */
export function ready (): void {
  if (workerState().supervised && process.connected) process.send?.({ clusterRun: 'ready' })
}

/** Register cleanup to run once the worker's servers have drained, before it exits. */
export function onShutdown (hook: ShutdownHook): void {
  workerState().shutdownHooks.push(hook)
}

/** true once this worker has started draining (shutdown, reload, scale-down, recycle). */
export function isDraining (): boolean {
  return workerState().draining
}

/** This worker's slot (0..N-1), stable across restarts; undefined outside cluster-run. */
export function workerId (): number | undefined {
  return readLaunch()?.workerId
}

/**
 * Let the primary's /metrics include this registry (a prom-client Registry, e.g. its
 * default `register`): at each scrape the primary asks every worker and aggregates
 * the answers with prom-client's cluster aggregation (summed unless a metric sets its
 * `aggregator`). One line in the app; nothing happens outside cluster-run.
 */
export function exposeMetrics (registry: MetricsSource): void {
  const { metrics } = workerState()
  if (!metrics.includes(registry)) metrics.push(registry)
}
