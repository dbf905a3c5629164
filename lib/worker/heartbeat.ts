// Heartbeats from the worker's main loop. A timer alone would go quiet while one
// poll phase runs hundreds of CPU-heavy handlers back to back, so every request
// also sends a beat when one is due: a busy worker that makes progress keeps beating.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { HeartbeatStats, ToPrimary } from '../protocol/messages.js'
import { workerState } from './state.js'
import { onEveryRequest, openConnections, inflightRequests } from './servers.js'

export function startHeartbeat (intervalMs: number, requestLimit: number, send: (m: ToPrimary) => void): void {
  const state = workerState()
  const delay = monitorEventLoopDelay({ resolution: 20 })
  delay.enable()
  let last = 0
  const beat = (): void => {
    last = Date.now()
    const memory = process.memoryUsage()
    const cpu = process.cpuUsage()
    const stats: HeartbeatStats = {
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      eventLoopDelayMs: Math.round(delay.percentile(99) / 1e6),
      requests: state.requests,
      inflight: inflightRequests(),
      refused: state.refused,
      abandoned: state.abandoned,
      connections: openConnections(),
      accepted: state.accepted,
      cpuMicros: cpu.user + cpu.system,
    }
    delay.reset()
    send({ clusterRun: 'heartbeat', ...stats })
  }
  beat()
  // A beat the request path just sent makes the timer's one redundant (and its
  // delay histogram empty: p99 0 on a saturated worker).
  setInterval(() => { if (Date.now() - last >= intervalMs / 2) beat() }, intervalMs).unref()
  // One comparison and a clock read per request.
  onEveryRequest(() => {
    if (state.requests === requestLimit || Date.now() - last >= intervalMs) beat()
  })
}
