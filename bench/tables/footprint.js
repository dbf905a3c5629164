// Table "footprint" — what cluster-run costs beside the bare node:cluster primary,
// each figure measured for both in the same run, in alternating order (A/B, B/A),
// with the median of each side, the difference, the ratio and the ratio per pair:
//   1. the primary's RSS 1 s after every worker listens (Express app, 2 workers)
//   2. cluster start: spawn → every worker listens (the same starts)
//   3. worker boot: fork → listening of the hello app, with cluster-run's preload and
//      without (bench/lib/boot-forks.js, a node:cluster primary of its own)
//   4. restart: `kill -9` of a worker that has been up longer than resetAfterMs
//      (30 s by default) → its replacement listens, under a light paced load
//   5. worker CPU per request: utime + stime of the workers (/proc/<pid>/stat)
//      over a paced load at a fixed rate on the hello app, divided by the requests
//   6. /light req/s (a closed loop): reported, no target
// BENCH_ONLY=footprint runs it alone.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLI, ROOT, appPath, freePort, isOurs, rssMb, start, track } from '../lib/contenders.js'
import { CLK_TCK, cpuTicks, watchCpu } from '../lib/cpu.js'
import { load, startLoad } from '../lib/client.js'
import { fmt, fmtRatio, max, median, ratio, table, verdict } from '../lib/stats.js'
import { CONFIG, HEAVY_APP, QUICK, finish, measure, note, otherLoadLine, progress, rotate, slim, strip } from '../lib/shared.js'

const HELLO_APP = appPath('hello.js')
const BOOT_FORKS = new URL('../lib/boot-forks.js', import.meta.url)
const PRELOAD_URL = pathToFileURL(path.join(path.dirname(CLI), 'preload.js')).href

export const SETTINGS = {
  workers: 2,
  // rows 1, 2 and 6: pairs of starts of the Express app; /light runs in the first `lightPairs`
  startPairs: QUICK ? 2 : 6,
  lightPairs: QUICK ? 1 : 4,
  rssAfterMs: 1000,
  warmup: CONFIG.warmup,
  light: { path: '/light', connections: 100, durationS: QUICK ? 2 : 5 },
  // row 3: forks per variant (plain, preload), alternating
  bootForks: QUICK ? 6 : 20,
  // row 4: both contenders run side by side (their own ports) under the light load;
  // each round kills one worker of each slot of each, once every worker has been up `upMs`
  restart: { rounds: QUICK ? 1 : 2, upMs: 31_000, resetAfterMs: 30_000, rate: 200, connections: 8, path: '/light', settleMs: 1500, timeoutMs: 15_000 },
  // row 5: runs per contender, alternating; a warm-up at the same rate first
  cpu: { runs: QUICK ? 1 : 4, rate: 6000, connections: 16, path: '/', warmupS: QUICK ? 1 : 2, durationS: QUICK ? 4 : 10, minAchieved: 0.98 },
}

export const FOOTPRINT_TARGETS = {
  primaryRssMb: 47, // cluster-run's primary, absolute
  startDeltaMs: 50, // all workers listening at most 50 ms after the bare primary's
  bootDeltaMs: 10, // a worker with the preload listening at most 10 ms after a plain one
  restartDeltaMs: 50, // a crashed worker's replacement listening at most 50 ms after the bare primary's
  cpuDeltaUs: 1, // worker CPU per request at most 1 µs over the bare primary's workers
}

const BARE = 'bare'
const CR = 'cr-rr'
// references, in the RSS and start rows only: each pair of starts is followed by one of each
const REFERENCES = ['throng', 'pm2']
const LABEL = { [BARE]: 'bare node:cluster', [CR]: 'cluster-run rr', throng: 'throng 5', pm2: 'PM2 7 (pm2-runtime)' }
/** Pair i runs A then B for even i, B then A for odd i. */
const pairOrder = (i) => (i % 2 === 0 ? [BARE, CR] : [CR, BARE])

/** Time on CPU of a PID in ns (/proc/<pid>/schedstat, first field): a finer cross-check of the ticks. */
function schedNs (pid) {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0])
  } catch {
    return null
  }
}

function envFor (home) {
  // a control-socket folder of its own: no clash with another cluster-run on this machine
  return { CLUSTER_RUN_HOME: home }
}

const round = (x, d = 1) => (typeof x === 'number' ? Math.round(x * 10 ** d) / 10 ** d : null)

/** The two sides of a row: the samples, their medians, difference and ratio, and the per-pair ratios. */
function compare (pairs) {
  const a = pairs.map((p) => p.bare)
  const b = pairs.map((p) => p.cr)
  const mA = median(a)
  const mB = median(b)
  const pairRatios = pairs.map((p) => ratio(p.cr, p.bare))
  const pairDeltas = pairs.map((p) => (typeof p.cr === 'number' && typeof p.bare === 'number' ? p.cr - p.bare : null))
  return {
    n: pairs.filter((p) => typeof p.bare === 'number' && typeof p.cr === 'number').length,
    bare: mA,
    cr: mB,
    delta: typeof mA === 'number' && typeof mB === 'number' ? mB - mA : null,
    ratio: ratio(mB, mA),
    pairRatios,
    pairDeltas,
    medianPairRatio: median(pairRatios),
    medianPairDelta: median(pairDeltas),
  }
}

function slimLoad (r) {
  if (!r) return null
  const { latency, duringResult, ...rest } = r
  return { ...rest, p99: latency.ok.p99, mean: latency.ok.mean }
}

// ---------------------------------------------------------------------------
// rows 1, 2, 6: starts of the Express app

async function startRun (kind, withLight, env) {
  const port = await freePort()
  const c = await start(kind, { app: HEAVY_APP, workers: SETTINGS.workers, port, env })
  try {
    await sleep(SETTINGS.rssAfterMs)
    const rss = rssMb(c.pid)
    let light = null
    let rssAfterLoad = null
    if (withLight) {
      await measure(c, SETTINGS.warmup)
      light = await measure(c, SETTINGS.light)
      rssAfterLoad = rssMb(c.pid)
    }
    const primaryStart = c.events.find((e) => e.event === 'primary.start')
    const firstFork = c.events.find((e) => e.event === 'worker.fork' || e.event === 'fork')
    const exit = await finish(c, 'table footprint, start')
    return { kind, listenMs: c.listenMs, firstForkMs: firstFork ? round(firstFork.at - c.spawnedAt) : null, rssMb: rss, rssAfterLoadMb: rssAfterLoad, light: slimLoad(light), configFile: primaryStart?.configFile ?? null, exit, contender: slim(c) }
  } finally {
    await c.stop()
  }
}

async function startRows (env) {
  const pairs = []
  for (let i = 0; i < SETTINGS.startPairs; i++) {
    const withLight = i < SETTINGS.lightPairs
    const pair = {}
    for (const kind of pairOrder(i)) {
      progress(`footprint: start pair ${i + 1}/${SETTINGS.startPairs}, ${LABEL[kind]}${withLight ? ' (+ /light)' : ''}`)
      pair[kind] = await startRun(kind, withLight, env)
      if (kind === CR && pair[kind].configFile) note(`table footprint: cluster-run found a config file (${pair[kind].configFile}): not the default config`, pair[kind].configFile)
    }
    const refs = {}
    for (const kind of rotate(REFERENCES, i)) {
      progress(`footprint: start pair ${i + 1}/${SETTINGS.startPairs}, reference ${LABEL[kind]}`)
      refs[kind] = await startRun(kind, false, env)
    }
    pairs.push({ order: pairOrder(i), ...pair, refs })
  }
  return pairs
}

// ---------------------------------------------------------------------------
// row 3: worker boot with and without the preload

async function bootRow () {
  const port = await freePort()
  progress(`footprint: worker boot, ${SETTINGS.bootForks} forks with the preload and ${SETTINGS.bootForks} without, alternating`)
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CLUSTER_RUN_')) env[k] = v
  env.PORT = String(port)
  const child = spawn(process.execPath, [BOOT_FORKS.pathname, HELLO_APP, PRELOAD_URL, String(SETTINGS.bootForks)], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  track(child.pid, 'boot-forks.js')
  const lines = []
  let stderr = ''
  let pending = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    pending += chunk
    const parts = pending.split('\n')
    pending = parts.pop()
    for (const line of parts) {
      let e
      try { e = JSON.parse(line) } catch { continue }
      if (e.event === 'fork') track(e.pid, HELLO_APP)
      lines.push(e)
    }
  })
  child.stderr.setEncoding('utf8').on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000 + SETTINGS.bootForks * 2 * 2000)
  const [code, signal] = await new Promise((resolve) => child.once('exit', (...a) => resolve(a)))
  clearTimeout(timer)
  const errors = lines.filter((e) => e.event === 'error')
  if (code !== 0 || errors.length || !lines.some((e) => e.event === 'done')) {
    note('table footprint: the worker-boot forks did not all complete', { code, signal, errors, stderr: stderr.trim().split('\n').slice(-10) })
  } else if (stderr.trim()) {
    note('table footprint: the worker-boot forks wrote to stderr', stderr.trim().split('\n').slice(-10))
  }
  const boots = lines.filter((e) => e.event === 'boot')
  const pairs = []
  for (let i = 0; i < SETTINGS.bootForks; i++) {
    const plain = boots.find((b) => b.pair === i && b.variant === 'plain')
    const pre = boots.find((b) => b.pair === i && b.variant === 'preload')
    if (plain && pre) pairs.push({ order: i % 2 === 0 ? ['plain', 'preload'] : ['preload', 'plain'], bare: round(plain.listeningMs), cr: round(pre.listeningMs), bareOnlineMs: round(plain.onlineMs), crOnlineMs: round(pre.onlineMs) })
  }
  return { preloadUrl: PRELOAD_URL, pairs, exit: { code, signal } }
}

// ---------------------------------------------------------------------------
// row 4: a crashed worker's replacement

/** The worker to kill: cluster-run, the one in `slot`; bare, the oldest alive. */
function victim (c, slot) {
  const forks = c.events.filter((e) => e.event === 'worker.fork' || e.event === 'fork')
  const exited = new Set(c.events.filter((e) => e.event === 'worker.exit' || e.event === 'exit').map((e) => e.pid))
  const alive = forks.filter((e) => !exited.has(e.pid) && isOurs(e.pid))
  if (c.kind === BARE) return alive[0]
  return alive.filter((e) => e.workerId === slot).at(-1)
}

async function killOne (c, slot) {
  const v = victim(c, slot)
  if (!v) throw new Error(`${c.label}: no live worker to kill in slot ${slot}`)
  const from = c.events.length
  const killAt = performance.now()
  process.kill(v.pid, 'SIGKILL')
  const { timeoutMs } = SETTINGS.restart
  const isReplacement = c.kind === BARE
    ? (e) => e.event === 'listening' && e.pid !== v.pid
    : (e) => e.event === 'worker.listening' && e.workerId === slot && e.pid !== v.pid
  const listened = await c.waitFor(isReplacement, { from, timeoutMs, what: `the replacement of worker ${v.pid}` })
  let readyMs = null
  if (c.kind !== BARE) {
    const ready = await c.waitFor((e) => e.event === 'worker.ready' && e.workerId === slot && e.pid !== v.pid, { from, timeoutMs, what: `worker.ready of slot ${slot}` })
    readyMs = ready.at - killAt
  }
  const exitEvent = c.events.slice(from).find((e) => (e.event === 'worker.exit' || e.event === 'exit') && e.pid === v.pid)
  return {
    kind: c.kind,
    slot,
    pid: v.pid,
    uptimeMs: Math.round(killAt - v.at),
    listeningMs: round(listened.at - killAt),
    readyMs: round(readyMs),
    exitSeenMs: exitEvent ? round(exitEvent.at - killAt) : null,
    replacementPid: listened.pid,
    events: c.events.slice(from, c.events.indexOf(listened) + 1).map((e) => ({ sinceKillMs: round(e.at - killAt), ...strip(e) })),
  }
}

async function restartRound (r, env) {
  const S = SETTINGS.restart
  const order = pairOrder(r)
  const cs = {}
  const loads = {}
  try {
    for (const kind of order) {
      cs[kind] = await start(kind, { app: HEAVY_APP, workers: SETTINGS.workers, port: await freePort(), env })
      loads[kind] = startLoad({ port: cs[kind].port, path: S.path, connections: S.connections, rate: S.rate, durationS: 3600 })
    }
    const lastFork = Math.max(...order.map((k) => Math.max(...cs[k].events.filter((e) => e.event === 'worker.fork' || e.event === 'fork').map((e) => e.at))))
    const waitMs = Math.max(0, lastFork + S.upMs - performance.now())
    progress(`footprint: restart round ${r + 1}/${S.rounds}: both contenders under ${S.rate} req/s each, waiting ${fmt(waitMs / 1000, 1)} s until every worker has been up ${S.upMs / 1000} s`)
    await sleep(waitMs)
    const kills = []
    for (const slot of [0, 1]) {
      for (const kind of order) {
        let k
        try {
          k = await killOne(cs[kind], slot)
        } catch (err) {
          note(`table footprint: ${LABEL[kind]}, restart round ${r + 1}, slot ${slot}: ${err.message}`, null)
          kills.push({ round: r, kind, slot, error: err.message, listeningMs: null })
          continue
        }
        progress(`  ${LABEL[kind]}, kill -9 of ${k.pid} (up ${fmt(k.uptimeMs / 1000, 1)} s) → replacement listening in ${fmt(k.listeningMs)} ms`)
        if (k.uptimeMs < S.resetAfterMs) note(`table footprint: ${LABEL[kind]} worker ${k.pid} was up only ${k.uptimeMs} ms when killed`, k)
        kills.push({ round: r, ...k })
        await sleep(S.settleMs)
      }
    }
    const loadResults = {}
    for (const kind of order) {
      loadResults[kind] = slimLoad(await loads[kind].stop())
      loads[kind] = null
    }
    const exits = {}
    for (const kind of order) {
      // the deliberate kills are in `kills`; finish() is to report only what else went wrong
      const killed = new Set(kills.filter((k) => k.kind === kind && k.pid).map((k) => k.pid))
      cs[kind].events = cs[kind].events.filter((e) => !(e.event === 'worker.exit' && killed.has(e.pid) && e.signal === 'SIGKILL'))
      exits[kind] = await finish(cs[kind], `table footprint, restart round ${r + 1}`)
    }
    return { round: r, order, kills, loads: loadResults, exits, contenders: Object.fromEntries(order.map((k) => [k, slim(cs[k])])) }
  } finally {
    for (const kind of order) {
      await loads[kind]?.stop()
      if (cs[kind]) await cs[kind].stop()
    }
  }
}

// ---------------------------------------------------------------------------
// row 5: worker CPU per request at a fixed rate

function cpuSnapshot (c) {
  const workers = [...c.workerPids].filter((pid) => isOurs(pid))
  return {
    at: performance.now(),
    workers: Object.fromEntries(workers.map((pid) => [pid, { ticks: cpuTicks(pid), ns: schedNs(pid) }])),
    primary: { ticks: cpuTicks(c.pid), ns: schedNs(c.pid) },
    self: process.cpuUsage(),
  }
}

async function cpuRun (kind, env) {
  const S = SETTINGS.cpu
  const c = await start(kind, { app: HELLO_APP, workers: SETTINGS.workers, port: await freePort(), env })
  const paced = { port: c.port, path: S.path, connections: S.connections, rate: S.rate }
  try {
    // the measured load opens connections of its own: 16 connects in ~60 000 requests
    const warm = await load({ ...paced, durationS: S.warmupS })
    const before = cpuSnapshot(c)
    const cpuDone = watchCpu(c)
    const measured = await load({ ...paced, durationS: S.durationS })
    measured.cpu = cpuDone()
    const after = cpuSnapshot(c)
    let ticks = 0
    let ns = 0
    const gone = []
    for (const pid of Object.keys(before.workers)) {
      const a = before.workers[pid]
      const b = after.workers[pid]
      if (!b || a.ticks === null || b.ticks === null) { gone.push(pid); continue }
      ticks += b.ticks - a.ticks
      ns += b.ns - a.ns
    }
    if (gone.length || Object.keys(before.workers).length !== SETTINGS.workers) note(`table footprint: ${LABEL[kind]}: the workers changed during the CPU run`, { before: Object.keys(before.workers), gone })
    const served = measured.answered
    if (measured.failed || measured.unfinished) note(`table footprint: ${LABEL[kind]}: the paced load had failures`, { failed: measured.failed, statuses: measured.statuses, unfinished: measured.unfinished, errorKinds: measured.errorKinds })
    if (measured.achievedRate < S.minAchieved * S.rate) note(`table footprint: ${LABEL[kind]}: the paced load reached ${fmt(measured.achievedRate)} req/s of ${S.rate}`, { achievedRate: measured.achievedRate, maxBacklog: measured.maxBacklog })
    const selfUs = (after.self.user + after.self.system) - (before.self.user + before.self.system)
    const exit = await finish(c, 'table footprint, CPU per request')
    return {
      kind,
      served,
      workerTicks: ticks,
      workerCpuS: ticks / CLK_TCK,
      usPerRequest: served ? (ticks / CLK_TCK) * 1e6 / served : null,
      usPerRequestSchedstat: served ? ns / 1e3 / served : null,
      primaryUsPerRequest: served && after.primary.ticks !== null ? ((after.primary.ticks - before.primary.ticks) / CLK_TCK) * 1e6 / served : null,
      clientUsPerRequest: served ? selfUs / served : null,
      warmup: { achievedRate: warm.achievedRate, ok: warm.ok, errors: warm.errors },
      load: { ...slimLoad(measured), p50: measured.latency.ok.p50, max: measured.latency.ok.max },
      exit,
      contender: slim(c),
    }
  } finally {
    await c.stop()
  }
}

async function cpuRows (env) {
  const S = SETTINGS.cpu
  const pairs = []
  for (let i = 0; i < S.runs; i++) {
    const pair = {}
    for (const kind of pairOrder(i)) {
      progress(`footprint: CPU per request, run ${i + 1}/${S.runs}, ${LABEL[kind]} at ${S.rate} req/s for ${S.durationS} s`)
      pair[kind] = await cpuRun(kind, env)
      progress(`  ${fmt(pair[kind].usPerRequest, 1)} µs/request (schedstat ${fmt(pair[kind].usPerRequestSchedstat, 1)}), ${fmt(pair[kind].load.achievedRate)} req/s achieved`)
    }
    pairs.push({ order: pairOrder(i), ...pair })
  }
  return pairs
}

// ---------------------------------------------------------------------------

async function run () {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cr-footprint-'))
  const env = envFor(home)
  try {
    const starts = await startRows(env)
    const boot = await bootRow()
    const restarts = []
    for (let r = 0; r < SETTINGS.restart.rounds; r++) restarts.push(await restartRound(r, env))
    const cpu = await cpuRows(env)
    return summarize({ starts, boot, restarts, cpu })
  } finally {
    fs.rmSync(home, { recursive: true, force: true })
  }
}

function summarize ({ starts, boot, restarts, cpu }) {
  const sides = (list, get) => list.map((p) => ({ bare: get(p[BARE]), cr: get(p[CR]) }))
  const rows = {
    rss: compare(sides(starts, (x) => x.rssMb)),
    start: compare(sides(starts, (x) => x.listenMs)),
    boot: compare(boot.pairs),
    restart: compare(restartPairs(restarts)),
    cpu: compare(sides(cpu, (x) => x.usPerRequest)),
    light: compare(sides(starts.filter((p) => p[BARE].light && p[CR].light), (x) => x.light.rps)),
  }
  const T = FOOTPRINT_TARGETS
  const verdicts = {
    rss: rows.rss.cr === null ? null : rows.rss.cr <= T.primaryRssMb,
    start: rows.start.delta === null ? null : rows.start.delta <= T.startDeltaMs,
    boot: rows.boot.delta === null ? null : rows.boot.delta <= T.bootDeltaMs,
    restart: rows.restart.delta === null ? null : rows.restart.delta <= T.restartDeltaMs,
    cpu: rows.cpu.delta === null ? null : rows.cpu.delta <= T.cpuDeltaUs,
  }
  const extra = {
    cpuSchedstat: compare(sides(cpu, (x) => x.usPerRequestSchedstat)),
    cpuPrimary: compare(sides(cpu, (x) => x.primaryUsPerRequest)),
    cpuAchieved: cpu.flatMap((p) => [p[BARE].load.achievedRate, p[CR].load.achievedRate]),
    cpuClientUs: median(cpu.flatMap((p) => [p[BARE].clientUsPerRequest, p[CR].clientUsPerRequest])),
    cpuP99: { bare: median(cpu.map((p) => p[BARE].load.p99)), cr: median(cpu.map((p) => p[CR].load.p99)) },
    bootOnline: compare(boot.pairs.map((p) => ({ bare: p.bareOnlineMs, cr: p.crOnlineMs }))),
    restartReady: median(restarts.flatMap((r) => r.kills.filter((k) => k.kind === CR).map((k) => k.readyMs))),
    restartUptimeMinS: (Math.min(...restarts.flatMap((r) => r.kills.map((k) => k.uptimeMs ?? Infinity)))) / 1000,
    restartLoadFailed: Object.fromEntries([BARE, CR].map((k) => [k, restarts.reduce((n, r) => n + (r.loads[k]?.failed ?? 0), 0)])),
    startFirstFork: compare(sides(starts, (x) => x.firstForkMs)),
    rssAfterLoad: compare(sides(starts.filter((p) => p[BARE].light && p[CR].light), (x) => x.rssAfterLoadMb)),
    references: Object.fromEntries(REFERENCES.map((k) => [k, {
      n: starts.length,
      rssMb: median(starts.map((p) => p.refs[k].rssMb)),
      listenMs: median(starts.map((p) => p.refs[k].listenMs)),
    }])),
  }
  return { settings: SETTINGS, targets: FOOTPRINT_TARGETS, clkTck: CLK_TCK, rows, verdicts, extra, starts, boot, restarts, cpu }
}

/** Pairs of kills: the k-th kill of the bare primary with the k-th of cluster-run (same round, same slot). */
function restartPairs (restarts) {
  const pairs = []
  for (const r of restarts) {
    const bare = r.kills.filter((k) => k.kind === BARE)
    const cr = r.kills.filter((k) => k.kind === CR)
    for (let i = 0; i < Math.min(bare.length, cr.length); i++) pairs.push({ bare: bare[i].listeningMs, cr: cr[i].listeningMs, order: r.order })
  }
  return pairs
}

// ---------------------------------------------------------------------------

function print (res) {
  const { rows, verdicts, extra, settings: S } = res
  const T = res.targets
  const sign = (x, d) => (x === null ? '–' : `${x >= 0 ? '+' : '−'}${fmt(Math.abs(x), d)}`)
  const line = (label, key, unit, d, target, verdictOf) => {
    const r = rows[key]
    return [label, String(r.n), `${fmt(r.bare, d)} ${unit}`, `${fmt(r.cr, d)} ${unit}`, `${sign(r.delta, d)} ${unit}`, fmtRatio(r.ratio), fmtRatio(r.medianPairRatio), target, verdictOf === undefined ? '–' : verdict(verdictOf)]
  }
  const main = table(
    ['measure (cluster-run vs bare node:cluster primary)', 'pairs', 'bare', 'cluster-run', 'difference', 'ratio', 'median pair ratio', 'target', 'verdict'],
    [
      line('primary RSS 1 s after every worker listens (Express, 2 workers)', 'rss', 'MB', 1, `≤ ${T.primaryRssMb} MB`, verdicts.rss),
      line('cluster start: spawn → every worker listens (Express, 2 workers)', 'start', 'ms', 0, `≤ bare + ${T.startDeltaMs} ms`, verdicts.start),
      line('worker boot: fork → listening, hello app (bare = no preload)', 'boot', 'ms', 1, `≤ bare + ${T.bootDeltaMs} ms`, verdicts.boot),
      line(`restart: kill -9 → replacement listening (Express, up > ${S.restart.resetAfterMs / 1000} s, /light ${S.restart.rate} req/s)`, 'restart', 'ms', 0, `≤ bare + ${T.restartDeltaMs} ms`, verdicts.restart),
      line(`worker CPU per request at ${S.cpu.rate} req/s (hello app, 2 workers)`, 'cpu', 'µs', 2, `≤ bare + ${T.cpuDeltaUs} µs`, verdicts.cpu),
      line(`/light req/s (Express, closed loop, ${S.light.connections} connections, ${S.light.durationS} s)`, 'light', 'req/s', 0, 'reported', undefined),
    ],
    'lrrrrrrll'
  )
  const pairCell = (key, d) => {
    const r = rows[key]
    return r.pairRatios.map((x, i) => `${sign(r.pairDeltas[i], d)} (${fmtRatio(x)})`).join(', ')
  }
  const pairsTable = table(
    ['measure', 'cluster-run − bare per pair (ratio), in run order'],
    [
      ['primary RSS, MB', pairCell('rss', 1)],
      ['cluster start, ms', pairCell('start', 0)],
      ['worker boot, ms', `median ${sign(rows.boot.medianPairDelta, 1)}, range ${sign(Math.min(...rows.boot.pairDeltas.filter((x) => x !== null)), 1)} … ${sign(max(rows.boot.pairDeltas), 1)} over ${rows.boot.n} pairs`],
      ['restart, ms', pairCell('restart', 0)],
      ['worker CPU per request, µs', pairCell('cpu', 2)],
      ['/light req/s', pairCell('light', 0)],
    ],
    'll'
  )
  const refs = extra.references ?? {}
  const refTable = table(
    ['the same starts, other managers (medians)', 'starts', 'primary RSS', 'cluster start'],
    [
      [LABEL[BARE], String(rows.rss.n), `${fmt(rows.rss.bare, 1)} MB`, `${fmt(rows.start.bare)} ms`],
      ...REFERENCES.filter((k) => refs[k]).map((k) => [LABEL[k], String(refs[k].n), `${fmt(refs[k].rssMb, 1)} MB`, `${fmt(refs[k].listenMs)} ms`]),
      [LABEL[CR], String(rows.rss.n), `${fmt(rows.rss.cr, 1)} MB`, `${fmt(rows.start.cr)} ms`],
    ],
    'lrrr'
  )
  const met = Object.values(verdicts).filter((v) => v === true).length
  const achieved = extra.cpuAchieved.filter((x) => typeof x === 'number')
  const notes = [
    'Every pair runs both contenders back to back, bare first in odd pairs and cluster-run first in even ones; "bare" and "cluster-run" are the medians of each side, "difference" and "ratio" compare those medians (the verdicts use them), "median pair ratio" is the median of each pair\'s cluster-run / bare. cluster-run runs with its default config (`-w 2`, policy rr), the bare primary is `bench/bare-primary.js` (rr, Node\'s default on Linux).',
    `**RSS and start:** ${S.startPairs} pairs of starts of \`bench/apps/express-heavy.js\`; VmRSS (\`/proc/<pid>/status\`) of the primary ${S.rssAfterMs} ms after the last worker listens (cluster-run: the second \`worker.ready\`; bare: its \`all-listening\` line); of that, spawn → the first fork seen: ${fmt(extra.startFirstFork.bare)} ms bare, ${fmt(extra.startFirstFork.cr)} ms cluster-run (medians). After the /light load of the first ${S.lightPairs} pair(s): ${fmt(extra.rssAfterLoad.bare, 1)} MB bare, ${fmt(extra.rssAfterLoad.cr, 1)} MB cluster-run.`,
    `**Worker boot:** \`bench/lib/boot-forks.js\`, a node:cluster primary forking \`bench/apps/hello.js\` ${S.bootForks} times with \`--import ${path.relative(ROOT, new URL(res.boot.preloadUrl).pathname)}\` and cluster-run's launch environment and ${S.bootForks} times without, alternating, one worker at a time; fork → the \`listening\` event in that primary (fork → \`online\`: ${fmt(extra.bootOnline.bare, 1)} ms plain, ${fmt(extra.bootOnline.cr, 1)} ms with the preload).`,
    `**Restart:** ${S.restart.rounds} round(s); in each, both contenders run side by side on their own ports, each under a paced /light load of ${S.restart.rate} req/s over ${S.restart.connections} keep-alive connections; once every worker has been up ${S.restart.upMs / 1000} s (killed workers were up at least ${fmt(extra.restartUptimeMinS, 1)} s), one worker of each slot of each contender gets \`kill -9\`, alternately, ${S.restart.settleMs / 1000} s apart; kill → the replacement's \`listening\` (bare) or \`worker.listening\` of the slot (cluster-run; its \`worker.ready\` came ${fmt(extra.restartReady)} ms after the kill, median). Requests lost with the killed workers: ${extra.restartLoadFailed[BARE]} bare, ${extra.restartLoadFailed[CR]} cluster-run.`,
    `**CPU per request:** ${S.cpu.runs} run(s) per contender, alternating, each a fresh cluster of \`bench/apps/hello.js\` (node:http) with 2 workers: a paced load (\`bench/lib/client.js\`, ${S.cpu.connections} keep-alive connections used in turn, a request every 1/${S.cpu.rate} s, no pipelining) for ${S.cpu.warmupS} s, then a fresh one for ${S.cpu.durationS} s, measured: utime + stime of both workers (\`/proc/<pid>/stat\`, CLK_TCK ${res.clkTck}) over the measured part, divided by the requests answered. Achieved: ${fmt(Math.min(...achieved))}–${fmt(Math.max(...achieved))} req/s; client p99 ${fmt(extra.cpuP99.bare, 2)} ms bare, ${fmt(extra.cpuP99.cr, 2)} ms cluster-run. Cross-check from \`/proc/<pid>/schedstat\` (ns on CPU): ${fmt(extra.cpuSchedstat.bare, 2)} µs bare, ${fmt(extra.cpuSchedstat.cr, 2)} µs cluster-run (${sign(extra.cpuSchedstat.delta, 2)} µs). The primary's own CPU per request: ${fmt(extra.cpuPrimary.bare, 2)} µs bare, ${fmt(extra.cpuPrimary.cr, 2)} µs cluster-run. The load generator shares the 2 cores (${fmt(extra.cpuClientUs, 1)} µs of CPU per request in the bench process).`,
    `**/light:** a closed loop of ${S.light.connections} keep-alive connections for ${S.light.durationS} s after a ${S.warmup.durationS} s warm-up, in the first ${S.lightPairs} start pair(s): on 2 cores shared with the load generator, where pairs differ by several percent; the CPU row is the one that resolves a few percent.`,
    `**Other managers:** after each pair, one start of each of ${REFERENCES.map((k) => LABEL[k]).join(' and ')} (\`bench/throng-primary.js\`: throng's worker function imports the app; \`pm2-runtime start <app> -i 2\`, ready when the port accepts; its primary is the pm2-runtime process), measured the same way, rotating their order.`,
    `Targets met: ${met} of ${Object.keys(verdicts).length} (the issue's four: primary RSS, CPU per request, restart, worker boot + cluster start).`,
  ]
  const loads = [...res.starts.flatMap((p) => [p[BARE].light, p[CR].light]), ...res.cpu.flatMap((p) => [p[BARE].load, p[CR].load])]
  const other = otherLoadLine(loads)
  return [`#### ${title}`, '', main, '', pairsTable, '', refTable, '', ...notes.map((n) => `${n}\n`), other].join('\n')
}

function loads (res) {
  if (!res) return []
  return [...res.starts.flatMap((p) => [p[BARE].light, p[CR].light]), ...res.cpu.flatMap((p) => [p[BARE].load, p[CR].load])].filter(Boolean)
}

const title = 'Table footprint — cluster-run beside the bare node:cluster primary (medians of alternating pairs)'

export default { id: 'footprint', title, run, print, loads }
