// The Prometheus exposition of a scrape: cluster-run's own series, built from the
// status snapshot the primary already holds, the primary's process figures, and the
// apps' metrics from every worker, aggregated by prom-client as its cluster mode does.
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { ClusterStatus, WorkerStatus } from '../supervisor/status.js'

export interface Scrape {
  status: ClusterStatus
  /** each answering worker's getMetricsAsJSON() output */
  appMetrics: unknown[][]
  /** workers asked that did not answer in time */
  missing: number
  durationSeconds: number
}

/** The primary's own process metrics (CPU, memory, event loop), made once. */
export function primaryRegistry (): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'cluster_run_primary_' })
  return registry
}

export async function exposition (scrape: Scrape, primary: Registry): Promise<{ contentType: string, body: string }> {
  const own = ownSeries(scrape)
  const app = AggregatorRegistry.aggregate(scrape.appMetrics as Parameters<typeof AggregatorRegistry.aggregate>[0]) as Registry
  const merged = Registry.merge([own, primary, app])
  return { contentType: merged.contentType, body: await merged.metrics() }
}

function ownSeries ({ status, missing, durationSeconds }: Scrape): Registry {
  const registry = new Registry()
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name: `cluster_run_${name}`, help, labelNames, registers: [registry] })
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name: `cluster_run_${name}`, help, labelNames, registers: [registry] })

  gauge('info', 'constant 1, labelled with the cluster', ['name', 'node', 'scheduling_policy']).set({ name: status.name, node: status.node, scheduling_policy: status.schedulingPolicy }, 1)
  gauge('generation', 'the generation of the config in use (+1 per completed reload)').set(status.generation)
  gauge('uptime_seconds', 'seconds since the cluster started').set(status.uptimeMs / 1000)
  gauge('workers_desired', 'workers wanted (the config, or a scale)').set(status.workers.desired)
  const workers = gauge('workers', 'worker processes by state', ['state'])
  for (const state of ['ready', 'starting', 'draining'] as const) workers.set({ state }, status.workers[state])

  const rss = gauge('worker_rss_bytes', 'resident memory of the worker, from its latest heartbeat', ['worker'])
  const heap = gauge('worker_heap_used_bytes', 'V8 heap used by the worker, from its latest heartbeat', ['worker'])
  const delay = gauge('worker_event_loop_delay_seconds', 'p99 event-loop delay of the worker since its previous heartbeat', ['worker'])
  const inflight = gauge('worker_inflight_requests', 'requests in flight in the worker', ['worker'])
  const requests = counter('worker_requests_total', 'requests received by the worker process serving the slot (restarts from 0 with it)', ['worker'])
  const refused = counter('worker_refused_requests_total', 'requests the middleware refused, overloaded or draining (when the app uses it)', ['worker'])
  const abandoned = counter('worker_abandoned_requests_total', 'requests whose client closed its connection before their handler ran, and which were not run', ['worker'])
  const accepted = counter('worker_connections_accepted_total', 'connections accepted by the worker process serving the slot (restarts from 0 with it): how evenly the scheduling policy spreads them', ['worker'])
  const outputLines = counter('worker_output_lines_total', 'lines the worker process serving the slot wrote to stdout and stderr, captured by the primary', ['worker'])
  const outputBytes = counter('worker_output_bytes_total', 'bytes of those lines', ['worker'])
  const restarts = counter('worker_restarts_total', 'restarts of the slot after a crash', ['worker'])
  for (const m of serving(status.members)) {
    const labels = { worker: String(m.workerId) }
    restarts.inc(labels, m.restarts)
    if (m.rssBytes === null) continue
    rss.set(labels, m.rssBytes)
    heap.set(labels, m.heapUsedBytes ?? 0)
    delay.set(labels, (m.eventLoopDelayMs ?? 0) / 1000)
    inflight.set(labels, m.inflight ?? 0)
    requests.inc(labels, m.requests ?? 0)
    refused.inc(labels, m.refused ?? 0)
    abandoned.inc(labels, m.abandoned ?? 0)
    accepted.inc(labels, m.accepted ?? 0)
    if (m.outputLines !== null) {
      outputLines.inc(labels, m.outputLines)
      outputBytes.inc(labels, m.outputBytes ?? 0)
    }
  }
  counter('log_lines_missed_total', 'log lines that `cluster-run logs -f` followers read too slowly to get (nothing else is dropped)').inc(status.log.missedByFollowers)

  const exits = counter('worker_exits_total', 'worker exits by reason (crashed, signaled, hung, drained, recycled, ...)', ['reason'])
  for (const [reason, n] of Object.entries(status.exits)) exits.inc({ reason }, n ?? 0)
  counter('crashes_total', 'crashes counted toward the crash-rate breaker').inc(status.crashes.total)
  gauge('crashes_in_window', 'crashes inside the crash-rate window now').set(status.crashes.inWindow)
  const reloads = counter('reloads_total', 'reloads by outcome', ['outcome'])
  reloads.inc({ outcome: 'complete' }, status.reloads.complete)
  reloads.inc({ outcome: 'aborted' }, status.reloads.aborted)
  gauge('scrape_workers_missing', 'workers that did not send their app metrics in time for this scrape').set(missing)
  gauge('scrape_duration_seconds', 'how long collecting this scrape took').set(durationSeconds)
  return registry
}

/** One process per slot: the ready one, else the one starting; draining ones are leaving. */
function serving (members: WorkerStatus[]): WorkerStatus[] {
  const bySlot = new Map<number, WorkerStatus>()
  for (const m of members) {
    if (m.state === 'draining') continue
    const seen = bySlot.get(m.workerId)
    if (!seen || (seen.state !== 'ready' && m.state === 'ready')) bySlot.set(m.workerId, m)
  }
  return [...bySlot.values()]
}
