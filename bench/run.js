// npm run bench — cluster-run against a bare node:cluster primary (and a single
// process), on the issue's Express /heavy + /light app. Prints markdown tables on
// stdout, progress on stderr, and writes every raw figure to bench/results.json.
//
//   BENCH_QUICK=1        smoke run (~1.5 min): 1 repetition, shorter and smaller loads
//   BENCH_REPS=n         repetitions per contender (default 3, quick 1)
//   BENCH_HEAVY_REPS=n   repetitions of the /heavy load in table 1 (default 1, see README)
//   BENCH_ONLY=1,2,3     run only these tables
//   BENCH_IDLE_MS=n      table 3: let the workers idle n ms between the warm-up and the flood (default 0)
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { CLI, KINDS, appPath, freePort, killEverythingNow, leftovers, rssMb, start } from './lib/contenders.js'
import { load } from './lib/load.js'
import { httpLoad } from './lib/http-load.js'
import { watchCpu } from './lib/cpu.js'
import { fmt, fmtRatio, max, median, ratio, table, verdict } from './lib/stats.js'

const QUICK = process.env.BENCH_QUICK === '1'
const REPS = positiveInt(process.env.BENCH_REPS) ?? (QUICK ? 1 : 3)
const HEAVY_REPS = Math.min(REPS, positiveInt(process.env.BENCH_HEAVY_REPS) ?? 1)
const HTTP_CLIENT_REPS = 1
const ONLY = new Set((process.env.BENCH_ONLY ?? '1,2,3').split(',').map((s) => s.trim()))
const IDLE_MS = positiveInt(process.env.BENCH_IDLE_MS) ?? 0
const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url))

const HEAVY_APP = appPath('express-heavy.js')
const GUARDED_APP = appPath('express-heavy-guarded.js')

const CONFIG = {
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

const TARGETS = {
  throughputRatio: 0.95, // cluster-run req/s >= 95 % of the bare primary's
  p99Ratio: 1.05, // cluster-run p99 <= 105 % of the bare primary's
  listenDeltaMs: 100, // all workers listening at most 100 ms after the bare primary's
  primaryRssMb: 60,
  acceptedP99Ms: 2000,
  shedP99Ms: 500,
}

/** Things that went wrong or looked wrong, printed at the end and kept in the JSON. */
const observations = []
const note = (text, evidence) => {
  observations.push({ text, evidence })
  progress(`  ! ${text}`)
}

function positiveInt (s) {
  const n = Number(s)
  return Number.isInteger(n) && n > 0 ? n : undefined
}

function progress (line) {
  process.stderr.write(line + '\n')
}

/** Rotates the order of contenders from one repetition to the next. */
function rotate (list, by) {
  const k = by % list.length
  return [...list.slice(k), ...list.slice(0, k)]
}

function slim (c) {
  return { kind: c.kind, pid: c.pid, port: c.port, workers: c.workers, listenMs: c.listenMs }
}

/** Stops a contender and records anything abnormal about its exit. */
async function finish (c, context) {
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

/** A load against a contender, with the machine's CPU use by other processes recorded. */
async function measure (c, { client = 'autocannon', ...opts }) {
  const cpuDone = watchCpu(c)
  const result = await (client === 'node:http' ? httpLoad : load)({ port: c.port, ...opts })
  result.cpu = cpuDone()
  if (result.unanswered > 0 && !opts.during) {
    note(`${c.label}: ${result.unanswered} requests of ${opts.path} written and never answered (no restart was going on)`, { statuses: result.statuses, errorKinds: result.errorKinds })
  }
  return result
}

/** One line about the machine's other load during a table's measured runs. */
function otherLoadLine (loads) {
  const pcts = loads.filter(Boolean).map((l) => l.cpu?.otherPct)
  const m = median(pcts)
  if (m === null) return ''
  return `CPU used by other processes on this machine during these loads: median ${fmt(m)} %, max ${fmt(max(pcts))} % of all cores.`
}

/** Every measured load of the run (warm-ups excluded). */
function allLoads (results) {
  return [
    ...(results.table1?.runs ?? []).flatMap((r) => [r.light, r.heavy]),
    ...(results.table2?.runs ?? []).map((r) => r.load),
    ...(results.table3?.runs ?? []).filter((r) => r.from === 'table 3').map((r) => r.heavy),
  ].filter(Boolean)
}

function strip (e) {
  const { at, time, level, hostname, ...rest } = e
  return rest
}

// ── table 1: throughput ──────────────────────────────────────────────────────

const T1_KINDS = ['single', 'bare', 'cr-rr', 'cr-none']

async function table1 () {
  const runs = []
  for (let rep = 0; rep < REPS; rep++) {
    for (const kind of rotate(T1_KINDS, rep)) {
      const port = await freePort()
      progress(`table 1, repetition ${rep + 1}/${REPS}: ${KINDS[kind].label}`)
      const c = await start(kind, { app: HEAVY_APP, workers: CONFIG.workers, port })
      const run = { rep, ...slim(c) }
      try {
        await load({ port, ...CONFIG.warmup })
        run.light = await measure(c, CONFIG.light)
        run.rssAfterLightMb = rssMb(c.pid)
        progress(`  /light ${fmt(run.light.rps)} req/s, p99 ${fmt(run.light.latencyOk.p99, 1)} ms, failed ${run.light.failed}`)
        if (rep < HEAVY_REPS) {
          run.heavy = await measure(c, CONFIG.heavy)
          run.rssAfterHeavyMb = rssMb(c.pid)
          progress(`  /heavy ${fmt(run.heavy.rps, 1)} req/s, p99 ${fmt(run.heavy.latencyOk.p99)} ms, failed ${run.heavy.failed}, ${fmt(run.heavy.windowMs / 1000, 1)} s`)
        }
      } finally {
        run.stop = await finish(c, `table 1 rep ${rep + 1}`)
      }
      runs.push(run)
    }
  }

  const summary = {}
  for (const kind of T1_KINDS) {
    const mine = runs.filter((r) => r.kind === kind)
    const per = (loadName) => {
      const xs = mine.map((r) => r[loadName]).filter(Boolean)
      return {
        n: xs.length,
        ok: median(xs.map((x) => x.ok)),
        failed: median(xs.map((x) => x.failed)),
        failedMax: max(xs.map((x) => x.failed)),
        meanMs: median(xs.map((x) => x.latencyOk.mean)),
        p99Ms: median(xs.map((x) => x.latencyOk.p99)),
        rps: median(xs.map((x) => x.rps)),
        rssMb: max(mine.map((r) => loadName === 'heavy' ? r.rssAfterHeavyMb : r.rssAfterLightMb)),
      }
    }
    summary[kind] = { listenMs: median(mine.map((r) => r.listenMs)), heavy: per('heavy'), light: per('light') }
  }
  for (const kind of T1_KINDS) {
    for (const l of ['heavy', 'light']) {
      summary[kind][l].rpsVsBare = ratio(summary[kind][l].rps, summary.bare[l].rps)
      summary[kind][l].p99VsBare = ratio(summary[kind][l].p99Ms, summary.bare[l].p99Ms)
    }
  }

  const targets = {}
  for (const kind of ['cr-rr', 'cr-none']) {
    const s = summary[kind]
    const listenDelta = s.listenMs !== null && summary.bare.listenMs !== null ? s.listenMs - summary.bare.listenMs : null
    const rss = max([s.heavy.rssMb, s.light.rssMb])
    targets[kind] = {
      heavyRps: { value: s.heavy.rpsVsBare, pass: s.heavy.rpsVsBare === null ? null : s.heavy.rpsVsBare >= TARGETS.throughputRatio },
      heavyP99: { value: s.heavy.p99VsBare, pass: s.heavy.p99VsBare === null ? null : s.heavy.p99VsBare <= TARGETS.p99Ratio },
      lightRps: { value: s.light.rpsVsBare, pass: s.light.rpsVsBare === null ? null : s.light.rpsVsBare >= TARGETS.throughputRatio },
      lightP99: { value: s.light.p99VsBare, pass: s.light.p99VsBare === null ? null : s.light.p99VsBare <= TARGETS.p99Ratio },
      listen: { value: listenDelta, pass: listenDelta === null ? null : listenDelta <= TARGETS.listenDeltaMs },
      rss: { value: rss, pass: rss === null ? null : rss < TARGETS.primaryRssMb },
    }
  }
  return { runs, summary, targets }
}

function printTable1 ({ runs, summary, targets }) {
  const { heavy, light } = CONFIG
  const rows = []
  for (const l of ['heavy', 'light']) {
    for (const kind of T1_KINDS) {
      const s = summary[kind][l]
      if (!s.n) continue
      const failed = s.failedMax > s.failed ? `${fmt(s.failed)} (max ${s.failedMax})` : fmt(s.failed)
      rows.push([
        `/${l}`, KINDS[kind].label, `${s.n}`, fmt(s.ok), failed, fmt(s.meanMs, l === 'heavy' ? 0 : 1), fmt(s.p99Ms, l === 'heavy' ? 0 : 1), fmt(s.rps, l === 'heavy' ? 1 : 0),
        fmt(summary[kind].listenMs), fmt(s.rssMb, 1),
        kind === 'bare' ? '1.00×' : fmtRatio(s.rpsVsBare), kind === 'bare' ? '1.00×' : fmtRatio(s.p99VsBare),
      ])
    }
  }
  const out = []
  out.push(`### Table 1 — throughput (${CONFIG.workers} workers per cluster; median of the runs in column n)`)
  out.push('')
  out.push(`/heavy: ${heavy.amount} requests over ${heavy.connections} keep-alive connections, ${heavy.timeoutS} s per-request timeout. ` +
    `/light: ${light.connections} connections for ${light.durationS} s after a ${CONFIG.warmup.durationS} s warm-up.`)
  out.push('')
  out.push(table(
    ['load', 'contender', 'n', 'ok', 'failed', 'mean ms', 'p99 ms', 'req/s', 'all listening ms', 'primary RSS MB', 'req/s vs bare', 'p99 vs bare'],
    rows, 'llrrrrrrrrrr'))
  out.push('')
  out.push('"failed" = errors + timeouts + non-2xx. "all listening ms": spawn → every worker listening (single process: spawn → port accepts). ' +
    'RSS: VmRSS of the primary (single process: of the app itself) right after the load, max over runs.')
  out.push('')
  const t = (x, f) => x.value === null ? 'n/a' : `${f(x.value)} ${verdict(x.pass)}`
  const ms = (v) => `${v >= 0 ? '+' : ''}${fmt(v)} ms`
  const rowsT = [
    [`/heavy req/s ≥ ${TARGETS.throughputRatio}× bare`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].heavyRps, fmtRatio))],
    [`/heavy p99 ≤ ${TARGETS.p99Ratio}× bare`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].heavyP99, fmtRatio))],
    [`/light req/s ≥ ${TARGETS.throughputRatio}× bare`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].lightRps, fmtRatio))],
    [`/light p99 ≤ ${TARGETS.p99Ratio}× bare`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].lightP99, fmtRatio))],
    [`all listening ≤ bare + ${TARGETS.listenDeltaMs} ms`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].listen, ms))],
    [`primary RSS < ${TARGETS.primaryRssMb} MB`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].rss, (v) => `${fmt(v, 1)} MB`))],
  ]
  out.push(table(['target', 'cluster-run rr', 'cluster-run none'], rowsT, 'lll'))
  out.push('')
  out.push('The bare primary uses Node\'s default policy (rr on Linux), so "cluster-run none" vs bare also compares scheduling policies. ' +
    otherLoadLine(runs.flatMap((r) => [r.light, r.heavy])))
  return out.join('\n')
}

// ── table 2: reload under load ───────────────────────────────────────────────

/** cluster-run: SIGHUP, then wait for reload.complete (or reload.aborted). */
async function reloadClusterRun (c) {
  const from = c.events.length
  const before = new Set(currentWorkers(c))
  const sentAt = performance.now()
  c.child.kill('SIGHUP')
  const end = await c.waitFor((e) => e.event === 'reload.complete' || e.event === 'reload.aborted', { from, timeoutMs: 60_000, what: 'reload.complete' })
  const after = currentWorkers(c)
  return {
    event: end.event,
    ms: end.at - sentAt,
    reportedMs: end.durationMs ?? null,
    replaced: [...before].filter((pid) => !after.includes(pid)).length,
    events: c.events.slice(from).filter((e) => e.event.startsWith('worker.') || e.event.startsWith('reload.')).map((e) => ({ ...strip(e), atMs: Math.round(e.at - sentAt) })),
  }
}

/** The workers of a cluster-run primary that are in service (forked, not exited, not draining). */
function currentWorkers (c) {
  const alive = new Map()
  for (const e of c.events) {
    if (e.event === 'worker.fork') alive.set(e.pid, true)
    if (e.event === 'worker.drain' || e.event === 'worker.exit') alive.delete(e.pid)
  }
  return [...alive.keys()]
}

/** Bare primary, done by hand: SIGTERM one worker, wait until its replacement listens, next. */
async function reloadBare (c) {
  const alive = new Set()
  for (const e of c.events) {
    if (e.event === 'listening') alive.add(e.pid)
    if (e.event === 'exit') alive.delete(e.pid)
  }
  const original = [...alive]
  const known = new Set(original)
  const startedAt = performance.now()
  const steps = []
  for (const pid of original) {
    const from = c.events.length
    const killedAt = performance.now()
    process.kill(pid, 'SIGTERM')
    const next = await c.waitFor((e) => e.event === 'listening' && !known.has(e.pid), { from, timeoutMs: 30_000, what: 'a replacement listening' })
    known.add(next.pid)
    steps.push({ killed: pid, replacement: next.pid, ms: Math.round(next.at - killedAt) })
  }
  return { event: 'done', ms: performance.now() - startedAt, replaced: steps.length, steps }
}

const T2_ROWS = [
  { id: 'bare/autocannon', kind: 'bare', client: 'autocannon' },
  { id: 'cr-rr/autocannon', kind: 'cr-rr', client: 'autocannon' },
  { id: 'bare/node:http', kind: 'bare', client: 'node:http' },
  { id: 'cr-rr/node:http', kind: 'cr-rr', client: 'node:http' },
]

async function table2 () {
  const runs = []
  const cfg = CONFIG.reload
  for (let rep = 0; rep < REPS; rep++) {
    for (const row of rotate(T2_ROWS, rep)) {
      // autocannon is the measurement; the node:http client is a once-per-run cross-check
      if (row.client === 'node:http' && rep >= HTTP_CLIENT_REPS) continue
      const { kind } = row
      const port = await freePort()
      progress(`table 2, repetition ${rep + 1}/${REPS}: ${KINDS[kind].label}, ${cfg.workers} workers, ${row.client} client`)
      const c = await start(kind, { app: HEAVY_APP, workers: cfg.workers, port })
      const run = { row: row.id, client: row.client, rep, ...slim(c) }
      try {
        await load({ port, ...CONFIG.warmup })
        run.load = await measure(c, {
          client: row.client,
          path: cfg.path,
          connections: cfg.connections,
          durationS: cfg.durationS,
          timeoutS: cfg.timeoutS,
          during: async () => {
            await sleep(cfg.triggerAfterMs)
            try {
              return kind === 'bare' ? await reloadBare(c) : await reloadClusterRun(c)
            } catch (err) {
              return { event: 'error', error: err.message }
            }
          },
        })
        run.reload = run.load.duringResult
        delete run.load.duringResult
        const r = run.reload
        progress(`  ok ${run.load.ok}, failed ${run.load.failed} ${JSON.stringify(run.load.errorKinds)}, unanswered ${run.load.unanswered}, p99 ${fmt(run.load.latencyOk.p99, 1)} ms, restart ${fmt(r.ms)} ms (${r.event})`)
        if (kind === 'cr-rr') {
          const what = `cluster-run reload under load (${row.client}, rep ${rep + 1})`
          if (r.event !== 'reload.complete') note(`${what} ended with ${r.event}`, r)
          else if (r.replaced !== cfg.workers) note(`${what} replaced ${r.replaced} of ${cfg.workers} workers`, r.events)
          if (run.load.failed > 0) note(`${what}: ${run.load.failed} failed requests`, { errorKinds: run.load.errorKinds, statuses: run.load.statuses, reloadEvents: r.events })
        }
      } finally {
        run.stop = await finish(c, `table 2 rep ${rep + 1}`)
      }
      runs.push(run)
    }
  }
  const summary = {}
  for (const row of T2_ROWS) {
    const mine = runs.filter((r) => r.row === row.id)
    summary[row.id] = {
      n: mine.length,
      ok: median(mine.map((r) => r.load.ok)),
      failed: median(mine.map((r) => r.load.failed)),
      failedMax: max(mine.map((r) => r.load.failed)),
      unanswered: median(mine.map((r) => r.load.unanswered)),
      unansweredMax: max(mine.map((r) => r.load.unanswered)),
      p99Ms: median(mine.map((r) => r.load.latencyOk.p99)),
      reloadMs: median(mine.map((r) => (r.reload.event === 'reload.complete' || r.reload.event === 'done') ? r.reload.ms : null)),
      reloadOutcomes: mine.map((r) => r.reload.event),
      errorKinds: mine.map((r) => r.load.errorKinds),
    }
  }
  return { runs, summary }
}

function printTable2 ({ runs, summary }) {
  const cfg = CONFIG.reload
  const how = {
    bare: 'SIGTERM each worker, next once its replacement listens',
    'cr-rr': 'SIGHUP, until reload.complete',
  }
  const rows = T2_ROWS.map((row) => {
    const s = summary[row.id]
    if (!s.n) return null
    const kinds = {}
    for (const ek of s.errorKinds) for (const [k, v] of Object.entries(ek)) kinds[k] = (kinds[k] ?? 0) + v
    const detail = Object.entries(kinds).map(([k, v]) => `${k}×${v}`).join(', ') || '–'
    const failed = s.failedMax > s.failed ? `${fmt(s.failed)} (max ${s.failedMax})` : fmt(s.failed)
    const lost = row.client !== 'autocannon' ? '–' : s.unansweredMax > s.unanswered ? `${fmt(s.unanswered)} (max ${s.unansweredMax})` : fmt(s.unanswered)
    return [KINDS[row.kind].label, how[row.kind], row.client, `${s.n}`, fmt(s.ok), failed, lost, fmt(s.p99Ms, 1), fmt(s.reloadMs), detail]
  }).filter(Boolean)
  return [
    `### Table 2 — rolling restart under load (${cfg.workers} workers on ${os.availableParallelism()} cores; median of the runs in column n)`,
    '',
    `/light, ${cfg.connections} keep-alive connections for ${cfg.durationS} s; the restart starts ${cfg.triggerAfterMs / 1000} s in. ` +
      'autocannon is the measurement; the node:http keep-alive client (a protocol-abiding client, no retries) is a cross-check.',
    '',
    table(['contender', 'restart', 'client', 'n', 'ok', 'failed', 'unanswered', 'p99 ms', 'restart ms', 'errors, all runs'], rows, 'lllrrrrrrl'),
    '',
    '"failed" = errors (resets, timeouts) + non-2xx seen by the client during the whole run. "unanswered" (autocannon only): requests autocannon wrote on a ' +
      'connection after the response that closed it — it ignores `Connection: close`, reconnects and counts them nowhere; the node:http client never sends those. ' +
      otherLoadLine(runs.map((r) => r.load)),
  ].join('\n')
}

// ── table 3: overload protection ─────────────────────────────────────────────

// `guard` names an entry of CONFIG.guards; `sheds` marks the rows whose runs end in
// about a second because the guard refuses most of the flood (they get all REPS
// repetitions; the others last as long as table 1's /heavy and get HEAVY_REPS).
const T3_ROWS = [
  { id: 'rr', kind: 'cr-rr', guard: null },
  { id: 'rr+guard', kind: 'cr-rr', guard: 'lag' },
  { id: 'rr+elu', kind: 'cr-rr', guard: 'elu', sheds: true },
  { id: 'none', kind: 'cr-none', guard: null },
  { id: 'none+guard', kind: 'cr-none', guard: 'lag', sheds: true },
  { id: 'none+elu', kind: 'cr-none', guard: 'elu', sheds: true },
]

/** `expressGuard({ ... })` as the app calls it. */
function guardCall (name) {
  const opts = Object.entries(CONFIG.guards[name]).map(([k, v]) => `${k}: ${v}`).join(', ')
  return `expressGuard({ ${opts} })`
}

/** The environment apps/express-heavy-guarded.js reads its limits from. */
function guardEnv (name) {
  const g = CONFIG.guards[name]
  return {
    BENCH_GUARD_LAG_MS: String(g.maxEventLoopDelayMs),
    BENCH_GUARD_INFLIGHT: String(g.maxInFlight),
    BENCH_GUARD_ELU: g.maxEventLoopUtilization === undefined ? '' : String(g.maxEventLoopUtilization),
  }
}

const GUARD_LABEL = { lag: 'lag + in-flight', elu: 'lag + in-flight + ELU' }

async function table3 (t1) {
  const runs = []
  // The unguarded rows are table 1's /heavy runs of the same app, cluster and load
  // (which follow the warm-up at once: not comparable with an idle pause).
  for (const row of T3_ROWS.filter((r) => !r.guard && IDLE_MS === 0)) {
    for (const r of (t1?.runs ?? []).filter((x) => x.kind === row.kind && x.heavy)) {
      runs.push({ row: row.id, rep: r.rep, from: 'table 1', heavy: r.heavy })
    }
  }
  for (let rep = 0; rep < REPS; rep++) {
    for (const row of rotate(T3_ROWS, rep)) {
      if (runs.some((r) => r.row === row.id && r.from === 'table 1')) continue
      // A run that does not shed lasts as long as table 1's /heavy: as many repetitions as those.
      if (rep >= (row.sheds ? REPS : HEAVY_REPS)) continue
      const port = await freePort()
      progress(`table 3, repetition ${rep + 1}/${REPS}: ${KINDS[row.kind].label}${row.guard ? ` + ${guardCall(row.guard)}` : ''}`)
      const c = await start(row.kind, {
        app: row.guard ? GUARDED_APP : HEAVY_APP,
        workers: CONFIG.workers,
        port,
        env: row.guard ? guardEnv(row.guard) : {},
      })
      const run = { row: row.id, rep, from: 'table 3', ...slim(c) }
      try {
        // the guard is in front of the warm-up too: what it refuses of /light is the price of its limits
        run.warmup = summarizeWarmup(await load({ port, ...CONFIG.warmup }))
        if (IDLE_MS) await sleep(IDLE_MS)
        run.heavy = await measure(c, CONFIG.heavy)
        progress(`  accepted ${run.heavy.ok}, shed ${run.heavy.shed}, errors ${run.heavy.errors}, p99 accepted ${fmt(run.heavy.latencyOk.p99)} ms, p99 shed ${fmt(run.heavy.latencyShed.p99)} ms, ${fmt(run.heavy.windowMs / 1000, 1)} s`)
      } finally {
        run.stop = await finish(c, `table 3 rep ${rep + 1}`)
      }
      // warm-up and flood (an episode begun in the warm-up may last into the flood), read
      // once the workers have exited so that no log line is still on its way
      run.overloadStarts = c.events.filter((e) => e.event === 'overload.start').map((e) => e.reason)
      runs.push(run)
    }
  }
  const summary = {}
  for (const row of T3_ROWS) {
    const rs = runs.filter((r) => r.row === row.id)
    const s = {
      n: rs.length,
      from: rs[0]?.from ?? null,
      accepted: median(rs.map((r) => r.heavy.ok)),
      shed: median(rs.map((r) => r.heavy.shed)),
      other: median(rs.map((r) => r.heavy.non2xx - r.heavy.shed)),
      timeouts: median(rs.map((r) => r.heavy.timeouts)),
      timeoutsMax: max(rs.map((r) => r.heavy.timeouts)),
      errors: median(rs.map((r) => r.heavy.errors - r.heavy.timeouts)),
      acceptedP99Ms: median(rs.map((r) => r.heavy.latencyOk.p99)),
      acceptedP99MaxMs: max(rs.map((r) => r.heavy.latencyOk.p99)),
      shedP99Ms: median(rs.map((r) => r.heavy.latencyShed.p99)),
      shedP99MaxMs: max(rs.map((r) => r.heavy.latencyShed.p99)),
      wallS: median(rs.map((r) => r.heavy.windowMs / 1000)),
      overloadStarts: countBy(rs.flatMap((r) => r.overloadStarts ?? [])),
      warmupShedPct: median(rs.filter((r) => r.warmup).map((r) => 100 * r.warmup.shed / Math.max(1, r.warmup.ok + r.warmup.failed))),
    }
    s.targets = {
      acceptedP99: s.acceptedP99Ms === null ? null : s.acceptedP99Ms < TARGETS.acceptedP99Ms,
      shedP99: s.shedP99Ms === null ? null : s.shedP99Ms < TARGETS.shedP99Ms,
      noTimeouts: s.timeoutsMax === null ? null : s.timeoutsMax === 0,
    }
    summary[row.id] = s
  }
  return { runs, summary }
}

function summarizeWarmup (r) {
  return { ok: r.ok, shed: r.shed, failed: r.failed, p99OkMs: r.latencyOk.p99 }
}

function countBy (xs) {
  const counts = {}
  for (const x of xs) counts[x] = (counts[x] ?? 0) + 1
  return counts
}

const SHORT_REASON = { maxEventLoopDelayMs: 'lag', maxInFlight: 'in-flight', maxEventLoopUtilization: 'ELU', maxHeapUsedBytes: 'heap', maxRssBytes: 'rss' }

/** "ELU×3, lag×1" over all runs of a row; '–' when no episode started (or the row was unguarded). */
function reasonsCell (counts) {
  const parts = Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${SHORT_REASON[k] ?? k}×${v}`)
  return parts.join(', ') || '–'
}

/** p99 with its verdict; the worst run too when it differs from the median. */
function p99Cell (median, worst, pass) {
  if (median === null) return 'n/a'
  return `${fmt(median)} ${verdict(pass)}${worst !== null && Math.round(worst) > Math.round(median) ? ` (max ${fmt(worst)})` : ''}`
}

function printTable3 ({ runs, summary }) {
  const { heavy } = CONFIG
  const rows = T3_ROWS.map((row) => {
    const s = summary[row.id]
    const shedCol = s.shedP99Ms === null ? 'no 503' : p99Cell(s.shedP99Ms, s.shedP99MaxMs, s.targets.shedP99)
    return [
      KINDS[row.kind].label.replace('cluster-run ', ''), row.guard ? GUARD_LABEL[row.guard] : 'none' + (s.from === 'table 1' ? ' (table 1 runs)' : ''),
      `${s.n}`, fmt(s.accepted), fmt(s.shed), `${fmt(s.timeouts)} / ${fmt(s.errors)}${s.timeoutsMax > s.timeouts ? ` (max ${s.timeoutsMax} timeouts)` : ''}`,
      p99Cell(s.acceptedP99Ms, s.acceptedP99MaxMs, s.targets.acceptedP99), shedCol, verdict(s.targets.noTimeouts), fmt(s.wallS, 1),
      row.guard ? reasonsCell(s.overloadStarts) : '',
    ]
  })
  const rrElu = summary['rr+elu']
  const met = rrElu.n > 0 && rrElu.targets.acceptedP99 === true && rrElu.targets.shedP99 !== false && rrElu.targets.noTimeouts === true
  const missed = Object.entries({ 'accepted p99': rrElu.targets.acceptedP99, 'shed p99': rrElu.targets.shedP99, 'no timeouts': rrElu.targets.noTimeouts })
    .filter(([, ok]) => ok === false).map(([k]) => k)
  return [
    `### Table 3 — overload protection (cluster-run, ${CONFIG.workers} workers; median of the runs in column n)`,
    '',
    `/heavy: ${heavy.amount} requests over ${heavy.connections} keep-alive connections, ${heavy.timeoutS} s per-request timeout, ` +
      (IDLE_MS ? `sent after the workers idled ${IDLE_MS} ms following the /light warm-up. ` : 'sent as soon as the /light warm-up ends. ') +
      `Guards: "${GUARD_LABEL.lag}" = \`${guardCall('lag')}\`; "${GUARD_LABEL.elu}" = \`${guardCall('elu')}\`. ` +
      'Latencies measured at the client, split by status. ' +
      `Targets: accepted p99 < ${TARGETS.acceptedP99Ms} ms, shed p99 < ${TARGETS.shedP99Ms} ms, no timeouts.`,
    '',
    table(['policy', 'guard', 'n', 'accepted (2xx)', 'shed (503)', 'timeouts / errors', 'p99 accepted ms', 'p99 shed ms', 'no timeout', 'wall s', 'overload.start (warm-up + flood, all runs)'],
      rows, 'llrrrrrrlrl'),
    '',
    (rrElu.n === 0 ? '' : `Under rr (the default policy) with the utilization limit: ${met ? 'all targets met' : `missed: ${missed.join(', ')}`}. `) +
      'The load generator ignores Retry-After: every 503 is followed at once by the next request on that connection. ' +
      otherLoadLine(runs.map((r) => r.heavy)),
    '',
    `The price, during the ${CONFIG.warmup.durationS} s /light warm-up before each flood (${CONFIG.warmup.connections} connections, closed loop: ` +
      'the workers are saturated while /light answers in milliseconds), median share of requests refused: ' +
      T3_ROWS.filter((row) => row.guard).map((row) => `${KINDS[row.kind].label.replace('cluster-run ', '')} ${GUARD_LABEL[row.guard]} ${fmt(summary[row.id].warmupShedPct)} %`).join(', ') + '.',
  ].join('\n')
}

// ── main ─────────────────────────────────────────────────────────────────────

function meta () {
  const git = (...args) => { try { return execFileSync('git', args, { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' }).trim() } catch { return null } }
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

async function main () {
  if (!fs.existsSync(CLI)) {
    process.stderr.write('dist/cli.js is missing: run `npm run build` first.\n')
    return 2
  }
  const began = performance.now()
  const results = { meta: meta(), config: CONFIG, targets: TARGETS }
  progress(`cluster-run bench: ${QUICK ? 'quick' : 'full'} mode, ${REPS} repetition(s) (/heavy in table 1: ${HEAVY_REPS}), node ${process.version}, ${os.availableParallelism()} cores`)
  const printed = []
  try {
    if (ONLY.has('1')) {
      results.table1 = await table1()
      printed.push(printTable1(results.table1))
    }
    if (ONLY.has('2')) {
      results.table2 = await table2()
      printed.push(printTable2(results.table2))
    }
    if (ONLY.has('3')) {
      results.table3 = await table3(results.table1)
      printed.push(printTable3(results.table3))
    }
  } finally {
    const builtAt = fs.statSync(CLI).mtime.toISOString()
    if (builtAt !== results.meta.cliBuiltAt) {
      note('dist/ was rebuilt while the benchmark ran: later contenders ran newer code', { before: results.meta.cliBuiltAt, after: builtAt })
    }
    killEverythingNow()
    const left = leftovers()
    results.leftoverProcesses = left
    if (left.length) note('processes still alive at the end (killed by PID)', left)
    results.observations = observations
    results.totalSeconds = Math.round((performance.now() - began) / 100) / 10
    fs.writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n')
  }
  const header = [`## cluster-run benchmark — ${QUICK ? 'quick' : 'full'} mode, node ${process.version}, ${os.availableParallelism()} cores (${results.meta.cpuModel}), ${results.totalSeconds} s`]
  const others = median(allLoads(results).map((l) => l.cpu?.otherPct))
  results.otherCpuMedianPct = others
  if (others !== null && others > 10) {
    header.push('', `> **Warning:** other processes used a median ${fmt(others)} % of all cores during the measured loads. ` +
      'The figures below are what this busy machine gave, not what cluster-run does on an idle one; compare ratios, not absolute values, and prefer a rerun on a quiet machine.')
    fs.writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n')
  }
  process.stdout.write([header.join('\n'), ...printed].join('\n\n') + '\n')
  if (observations.length) {
    process.stdout.write('\n### Observations\n\n' + observations.map((o) => `- ${o.text}`).join('\n') + '\n(evidence in bench/results.json → observations)\n')
  }
  process.stdout.write(`\nRaw results: bench/results.json. Leftover processes: ${results.leftoverProcesses.length ? results.leftoverProcesses.join(', ') : 'none'}.\n`)
  return 0
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killEverythingNow()
    process.exit(130)
  })
}
process.on('exit', () => killEverythingNow())

main().then((code) => { process.exitCode = code }, (err) => {
  process.stderr.write(`bench failed: ${err?.stack ?? err}\n`)
  process.exitCode = 1
})

