// What the tables of `npm run bench` share: the settings read from the
// environment, the loads and targets (CONFIG, TARGETS), the observations list,
// and the helpers to run, measure and stop a contender.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { CLI, ROOT, appPath } from './contenders.js'
import { load } from './client.js'
import { watchCpu } from './cpu.js'
import { fmt, max, median } from './stats.js'

function positiveInt (s) {
  const n = Number(s)
  return Number.isInteger(n) && n > 0 ? n : undefined
}

export const QUICK = process.env.BENCH_QUICK === '1'
export const REPS = positiveInt(process.env.BENCH_REPS) ?? (QUICK ? 1 : 3)
export const HEAVY_REPS = Math.min(REPS, positiveInt(process.env.BENCH_HEAVY_REPS) ?? 1)
export const ONLY = new Set((process.env.BENCH_ONLY ?? '1,2,3,abandoned,logs,footprint,metrics,dashboard,realtime').split(',').map((s) => s.trim()))
export const IDLE_MS = positiveInt(process.env.BENCH_IDLE_MS) ?? 0
// BENCH_RESULTS=<file> writes the raw results elsewhere (a run of one table beside the full one)
export const RESULTS = process.env.BENCH_RESULTS ? path.resolve(process.env.BENCH_RESULTS) : fileURLToPath(new URL('../results.json', import.meta.url))

export const HEAVY_APP = appPath('express-heavy.js')
export const GUARDED_APP = appPath('express-heavy-guarded.js')

export const CONFIG = {
  workers: 2,
  heavy: { path: '/heavy', connections: QUICK ? 200 : 400, amount: QUICK ? 200 : 1200, timeoutS: 60 },
  light: { path: '/light', connections: 100, durationS: QUICK ? 2 : 5 },
  warmup: { path: '/light', connections: 50, durationS: 0.5 },
  reload: { path: '/light', connections: 50, durationS: QUICK ? 4 : 7, triggerAfterMs: QUICK ? 1000 : 2000, workers: 4, timeoutS: 10 },
  // table 3: passed to apps/express-heavy-guarded.js; the same limits, then with the loop-utilization limit added
  guards: {
    lag: { maxEventLoopDelayMs: 150, maxInFlight: 8 },
    elu: { maxEventLoopDelayMs: 150, maxInFlight: 8, maxEventLoopUtilization: 0.9 },
  },
}

export const TARGETS = {
  throughputRatio: 0.95, // cluster-run req/s >= 95 % of the bare primary's
  p99Ratio: 1.05, // cluster-run p99 <= 105 % of the bare primary's
  listenDeltaMs: 100, // all workers listening at most 100 ms after the bare primary's
  primaryRssMb: 60,
  acceptedP99Ms: 2000,
  shedP99Ms: 500,
}

/** Things that went wrong or looked wrong, printed at the end and kept in the JSON. */
export const observations = []
export const note = (text, evidence) => {
  observations.push({ text, evidence })
  progress(`  ! ${text}`)
}

export function progress (line) {
  process.stderr.write(line + '\n')
}

/** Rotates the order of contenders from one repetition to the next. */
export function rotate (list, by) {
  const k = by % list.length
  return [...list.slice(k), ...list.slice(0, k)]
}

export function slim (c) {
  return { kind: c.kind, pid: c.pid, port: c.port, workers: c.workers, listenMs: c.listenMs }
}

export function strip (e) {
  const { at, time, level, hostname, ...rest } = e
  return rest
}

/** Stops a contender and records anything abnormal about its exit. */
export async function finish (c, context) {
  const exit = await c.stop()
  const info = {
    exitCode: exit?.code ?? null,
    exitSignal: exit?.signal ?? null,
    stopMs: c.stopSentAt && exit ? Math.round(exit.at - c.stopSentAt) : null,
    forcedKill: Boolean(c.forcedKill),
    leftoverWorkers: c.leftoverWorkers ?? [],
  }
  if (c.kind.startsWith('cr-')) {
    if (info.forcedKill || info.exitCode !== 0) note(`${c.label} (${context}): SIGTERM did not end with exit code 0`, info)
    const bad = c.events.filter((e) => ['worker.killed', 'worker.hung', 'crash-rate.exceeded', 'boot.failed', 'reload.aborted', 'hook.error'].includes(e.event) ||
      (e.event === 'worker.exit' && e.expected === false))
    if (bad.length) note(`${c.label} (${context}): unexpected lifecycle events`, bad.map(strip))
    if (c.stderr.trim()) note(`${c.label} (${context}): wrote to stderr`, c.stderr.trim().split('\n').slice(-10))
    const complete = c.events.find((e) => e.event === 'shutdown.complete')
    if (!complete && !info.forcedKill) note(`${c.label} (${context}): no shutdown.complete event`, info)
  }
  if (info.leftoverWorkers.length) note(`${c.label} (${context}): workers still alive after the primary exited (killed by PID)`, info.leftoverWorkers)
  return info
}

/** classify() for loads that count the guard's refusals apart: 2xx, 503 and the rest. */
export const okShedOther = (res) => (res.status >= 200 && res.status < 300 ? 'ok' : res.status === 503 ? 'shed' : 'other')

/** A load (bench/lib/client.js) against a contender, with the machine's CPU use by other processes recorded. */
export async function measure (c, opts) {
  const cpuDone = watchCpu(c)
  const result = await load({ port: c.port, ...opts })
  result.cpu = cpuDone()
  if (result.unfinished > 0) note(`${c.label}: ${result.unfinished} requests of ${opts.path} still unanswered when the load gave up on them`, { statuses: result.statuses, errorKinds: result.errorKinds })
  return result
}

/** One line about the machine's other load during a table's measured runs. */
export function otherLoadLine (loads) {
  const pcts = loads.filter(Boolean).map((l) => l.cpu?.otherPct)
  const m = median(pcts)
  if (m === null) return ''
  return `CPU used by other processes on this machine during these loads: median ${fmt(m)} %, max ${fmt(max(pcts))} % of all cores.`
}

/** The run's settings and the machine, for results.json. */
export function meta () {
  const git = (...args) => { try { return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim() } catch { return null } }
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? null,
    quick: QUICK,
    reps: REPS,
    heavyReps: HEAVY_REPS,
    commit: git('rev-parse', 'HEAD'),
    dirtyFiles: git('status', '--porcelain')?.split('\n').filter(Boolean).length ?? null,
    cliBuiltAt: fs.statSync(CLI).mtime.toISOString(),
  }
}
