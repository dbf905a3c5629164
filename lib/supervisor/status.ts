// The cluster's status, built from what the primary already holds: the plan's state
// (slots, members, the crash window, the last reload) and each worker's latest
// heartbeat. No worker is asked anything, so it answers at once even when every worker
// is saturated. It carries no environment value and nothing of the config's `env`.
import type { Config } from '../config/schema.js'
import type { ExitReason, WorkerPhase } from '../common/lifecycle.js'
import { inWindow } from './crash-window.js'
import type { State } from './plan.js'

/** A worker process, as status() and workers() show it. */
export interface WorkerStatus {
  /** its slot, 0..N-1 (CLUSTER_RUN_WORKER_ID), which a replacement inherits */
  workerId: number
  pid: number
  state: WorkerPhase
  generation: number
  /** ms since the epoch */
  startedAt: number
  uptimeMs: number
  /** restarts of this slot after a crash */
  restarts: number
  /** the latest heartbeat's figures; null before the first beat */
  rssBytes: number | null
  heapUsedBytes: number | null
  eventLoopDelayMs: number | null
  requests: number | null
  inflight: number | null
  refused: number | null
  /** requests whose client left before their handler ran (not run) */
  abandoned: number | null
  /** the addresses its servers listen on (127.0.0.1:3000, [::]:3000) */
  listening: string[]
  /** connections its servers accepted (how evenly the scheduling policy spreads them) */
  accepted: number | null
  /** connections open now (keep-alive and upgraded ones included) */
  connections: number | null
  /** CPU time used since it started, user and system, in seconds */
  cpuSeconds: number | null
  /** lines and bytes it wrote to stdout and stderr (null when its output is not captured) */
  outputLines: number | null
  outputBytes: number | null
}

/** What the primary's logging reports of itself. */
export interface LogStatus {
  /** lines `cluster-run logs -f` followers were too slow to take (nothing else is ever dropped) */
  missedByFollowers: number
}

/** What the status reads of the parts that are not the plan's: each process's pid and output, the log. */
export interface StatusSources {
  pidOf: (member: number) => number
  outputOf: (pid: number) => { lines: number, bytes: number } | undefined
  log: () => LogStatus
}

export interface ClusterStatus {
  name: string
  pid: number
  app: string
  node: string
  schedulingPolicy: Config['schedulingPolicy']
  /** starting: not every worker was ready yet */
  state: 'starting' | 'running' | 'stopping' | 'stopped'
  startedAt: number
  uptimeMs: number
  generation: number
  reloading: boolean
  workers: { desired: number, ready: number, starting: number, draining: number }
  crashes: { inWindow: number, windowMs: number, limit: number, total: number }
  lastReload: { outcome: 'complete' | 'aborted', at: number, generation: number, reason?: string } | null
  /** worker exits so far, by reason (drained ones included) */
  exits: Partial<Record<ExitReason, number>>
  reloads: { complete: number, aborted: number }
  log: LogStatus
  members: WorkerStatus[]
}

export function buildStatus (state: State, config: Config, { pidOf, outputOf, log }: StatusSources, now: number): ClusterStatus {
  const members = [...state.members.values()]
  const count = (phase: WorkerPhase): number => members.filter((m) => m.phase === phase).length
  const lifecycle = state.lifecycle === 'running' && !state.started ? 'starting' : state.lifecycle === 'idle' ? 'starting' : state.lifecycle
  return {
    name: config.name,
    pid: process.pid,
    app: config.app,
    node: process.version,
    schedulingPolicy: config.schedulingPolicy,
    state: lifecycle,
    startedAt: state.startedAt,
    uptimeMs: state.startedAt ? now - state.startedAt : 0,
    generation: state.wish.generation,
    reloading: state.reload !== undefined,
    workers: { desired: state.wish.workers, ready: count('ready'), starting: count('starting'), draining: count('draining') },
    crashes: {
      inWindow: inWindow(state.crashes, state.policy.maxCrashRate, now).length,
      windowMs: state.policy.maxCrashRate.windowMs,
      limit: state.policy.maxCrashRate.crashes,
      total: state.totals.crashes,
    },
    lastReload: state.lastReload ?? null,
    exits: { ...state.totals.exits },
    reloads: { ...state.totals.reloads },
    log: log(),
    members: members
      .map((m) => ({
        workerId: m.slot,
        pid: pidOf(m.id),
        state: m.phase,
        generation: m.generation,
        startedAt: m.forkedAt,
        uptimeMs: now - m.forkedAt,
        restarts: state.slots[m.slot]?.restarts ?? 0,
        rssBytes: m.stats?.rssBytes ?? null,
        heapUsedBytes: m.stats?.heapUsedBytes ?? null,
        eventLoopDelayMs: m.stats?.eventLoopDelayMs ?? null,
        requests: m.stats?.requests ?? null,
        inflight: m.stats?.inflight ?? null,
        refused: m.stats?.refused ?? null,
        abandoned: m.stats?.abandoned ?? null,
        listening: m.listening ?? [],
        accepted: m.stats?.accepted ?? null,
        connections: m.stats?.connections ?? null,
        cpuSeconds: m.stats ? m.stats.cpuMicros / 1e6 : null,
        outputLines: outputOf(pidOf(m.id))?.lines ?? null,
        outputBytes: outputOf(pidOf(m.id))?.bytes ?? null,
      }))
      .sort((a, b) => a.workerId - b.workerId || a.startedAt - b.startedAt),
  }
}
