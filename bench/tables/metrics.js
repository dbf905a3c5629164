// Table "metrics" — the primary's /metrics: how long a scrape takes with 4 and 16
// workers (idle, sequential scrapes), and what metrics cost the app: /light
// throughput with metrics on and scraped every second, against the same app with
// metrics off, in alternating runs of the same bench run.
import { spawnSync } from 'node:child_process'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { KINDS, ROOT, appPath, freePort, start } from '../lib/contenders.js'
import { watchCpu } from '../lib/cpu.js'
import { load } from '../lib/client.js'
import { fmt, fmtRatio, median, ratio, summarize, table, verdict } from '../lib/stats.js'
import { CONFIG, QUICK, REPS, finish, measure, note, otherLoadLine, progress, slim } from '../lib/shared.js'

const APP = appPath('metrics-light.js')
const BUNDLE = path.join(ROOT, 'dist', 'bundle', 'cli.js')
const TSC_CLI = path.join(ROOT, 'dist', 'cli.js')
const KIND = 'cr-metrics'

const SETTINGS = {
  scrapeWorkers: [4, 16],
  scrapes: QUICK ? 50 : 200,
  // /light requests sent before the scrapes, so that the app's series have values;
  // the aggregated counter must then read exactly this
  primeRequests: 100,
  idleMs: 1500, // after every worker is ready and the priming requests, before the scrapes
  pairs: QUICK ? REPS : Math.max(3, REPS),
  throughputWorkers: CONFIG.workers,
  scrapeEveryMs: 1000,
  target: 0.98, // /light req/s with metrics on and scraped ≥ 0.98 × metrics off
}

/** The arms of the throughput runs. `off` against `on` is the target; `plain` is for information. */
const ARMS = {
  off: { label: 'metrics off (app instrumented, no metrics port)', metricsPort: false, env: {} },
  on: { label: 'metrics on, scraped every second', metricsPort: true, env: {} },
  plain: { label: 'metrics off, app without prom-client', metricsPort: false, env: { BENCH_APP_METRICS: '0' } },
}
const ARM_ORDER = ['off', 'on', 'plain']

/** The CLI as it ships (package.json bin: dist/bundle/cli.js); tsc's dist/cli.js if the bundle does not run. */
function pickCli () {
  const r = spawnSync(process.execPath, [BUNDLE, '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 15_000 })
  if (r.status === 0) return { path: BUNDLE, fallback: false }
  note(`metrics table: dist/bundle/cli.js does not run (${(r.stderr || r.error?.message || '').trim().split('\n').find((l) => /Error/.test(l)) ?? `exit ${r.status}`}); measured with dist/cli.js instead`, { stderr: (r.stderr ?? '').slice(-800) })
  return { path: TSC_CLI, fallback: true }
}

let cli = null
let seq = 0
/** A cluster name of its own for every cluster: the default (the package name) collides with any other cluster-run of this user. */
const clusterName = () => `bench-metrics-${process.pid}-${++seq}`

function registerKind () {
  KINDS[KIND] = {
    label: 'cluster-run',
    argv: ({ app, workers }) => [cli.path, app, '-w', String(workers)],
  }
}

/** One GET on 127.0.0.1 (a scrape: its body is read); resolves with status, body, ms (never rejects). */
function get (port, urlPath, agent, timeoutMs = 10_000) {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }))
      res.on('error', (err) => resolve({ status: null, error: err.code ?? err.message, ms: performance.now() - t0 }))
    })
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
    req.on('error', (err) => resolve({ status: null, error: err.code ?? err.message, ms: performance.now() - t0 }))
  })
}

/** The figures a scrape's body gives: the missing-workers gauge, the primary's own scrape duration, the app's /light counter. */
function parseScrape (body) {
  const num = (re) => { const m = re.exec(body); return m ? Number(m[1]) : null }
  let lightCount = null
  for (const m of body.matchAll(/^bench_http_requests_total\{([^}]*)\} (\S+)$/gm)) {
    if (m[1].includes('route="/light"')) lightCount = (lightCount ?? 0) + Number(m[2])
  }
  return {
    missing: num(/^cluster_run_scrape_workers_missing (\S+)$/m),
    durationS: num(/^cluster_run_scrape_duration_seconds (\S+)$/m),
    lightCount,
    hasHistogram: /^bench_http_request_duration_seconds_bucket\{/m.test(body),
  }
}

/** One scrape, reduced to what the table keeps. */
async function scrape (mport, agent) {
  const r = await get(mport, '/metrics', agent)
  const parsed = r.status === 200 ? parseScrape(r.body) : {}
  return { status: r.status, error: r.error ?? null, ms: r.ms, bytes: r.body?.length ?? 0, ...parsed }
}

function summarizeScrapes (scrapes) {
  const ok = scrapes.filter((s) => s.status === 200)
  return {
    n: scrapes.length,
    ok: ok.length,
    failed: scrapes.length - ok.length,
    latency: summarize(ok.map((s) => s.ms)),
    primaryDurationMs: median(ok.map((s) => s.durationS === null ? null : s.durationS * 1000)),
    missingNonZero: ok.filter((s) => s.missing !== 0).length,
    missingMax: ok.reduce((m, s) => Math.max(m, s.missing ?? Infinity), 0),
    bytes: median(ok.map((s) => s.bytes)),
    errors: scrapes.filter((s) => s.status !== 200).map((s) => s.status ?? s.error),
  }
}

/** Idle scrapes: `workers` workers, after priming requests and a pause, N sequential scrapes over a keep-alive connection. */
async function scrapeRun (workers) {
  const port = await freePort()
  const mport = await freePort()
  progress(`table metrics: ${SETTINGS.scrapes} sequential scrapes, ${workers} workers`)
  const c = await start(KIND, { app: APP, workers, port, args: ['--metrics-port', String(mport), '-n', clusterName()] })
  const run = { workers, ...slim(c), metricsPort: mport }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  try {
    run.primed = (await load({ port, path: '/light', connections: 8, amount: SETTINGS.primeRequests })).ok
    await sleep(SETTINGS.idleMs)
    // the first scrape of a primary (cold code paths) is kept apart from the measured ones
    run.firstScrape = await scrape(mport, agent)
    const scrapes = []
    const cpuDone = watchCpu(c)
    for (let i = 0; i < SETTINGS.scrapes; i++) scrapes.push(await scrape(mport, agent))
    run.cpu = cpuDone()
    run.summary = summarizeScrapes(scrapes)
    const first = scrapes.find((s) => s.status === 200)
    run.appCounter = first?.lightCount ?? null
    run.appCounterOk = scrapes.every((s) => s.status !== 200 || s.lightCount === run.primed)
    run.appHistogram = Boolean(first?.hasHistogram)
    run.scrapeMs = scrapes.map((s) => Math.round(s.ms * 100) / 100)
    const s = run.summary
    progress(`  median ${fmt(s.latency.p50, 2)} ms, p99 ${fmt(s.latency.p99, 2)} ms, max ${fmt(s.latency.max, 2)} ms; missing≠0 in ${s.missingNonZero}; app counter ${run.appCounter}/${run.primed}`)
    if (s.failed) note(`metrics: ${s.failed} of ${s.n} scrapes with ${workers} workers failed`, s.errors.slice(0, 20))
    if (s.missingNonZero) note(`metrics: cluster_run_scrape_workers_missing was not 0 in ${s.missingNonZero} of ${s.ok} idle scrapes with ${workers} workers (max ${s.missingMax})`, null)
    if (!run.appCounterOk) note(`metrics: the app's aggregated /light counter did not read ${run.primed} in every scrape with ${workers} workers`, { first: run.appCounter })
  } finally {
    agent.destroy()
    run.stop = await finish(c, `table metrics, scrapes with ${workers} workers`)
  }
  return run
}

/** /light under a closed-loop load, after a warm-up; the "on" arm is scraped every second during the measured load. */
async function throughputRun (armId, rep) {
  const arm = ARMS[armId]
  const port = await freePort()
  const mport = arm.metricsPort ? await freePort() : null
  const args = ['-n', clusterName(), ...(mport ? ['--metrics-port', String(mport)] : [])]
  progress(`table metrics, pair ${rep + 1}/${SETTINGS.pairs}: ${arm.label}`)
  const c = await start(KIND, { app: APP, workers: SETTINGS.throughputWorkers, port, env: arm.env, args })
  const run = { arm: armId, rep, ...slim(c) }
  try {
    await load({ port, ...CONFIG.warmup })
    const during = mport
      ? async (startedAt) => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
        const scrapes = []
        const endAt = startedAt + CONFIG.light.durationS * 1000
        try {
          for (let next = startedAt + SETTINGS.scrapeEveryMs; next < endAt; next += SETTINGS.scrapeEveryMs) {
            await sleep(Math.max(0, next - performance.now()))
            scrapes.push(await scrape(mport, agent))
          }
        } finally {
          agent.destroy()
        }
        return summarizeScrapes(scrapes)
      }
      : undefined
    run.light = await measure(c, { ...CONFIG.light, during })
    run.scrapesDuringLoad = run.light.duringResult ?? null
    delete run.light.duringResult
    const sc = run.scrapesDuringLoad
    progress(`  /light ${fmt(run.light.rps)} req/s, p99 ${fmt(run.light.latency.ok.p99, 1)} ms, failed ${run.light.failed}` +
      (sc ? `; ${sc.ok}/${sc.n} scrapes, median ${fmt(sc.latency.p50, 1)} ms, max ${fmt(sc.latency.max, 1)} ms, missing≠0 in ${sc.missingNonZero}` : ''))
    if (run.light.failed) note(`metrics: /light (${arm.label}, pair ${rep + 1}) had ${run.light.failed} failed requests`, { errorKinds: run.light.errorKinds, statuses: run.light.statuses })
    if (sc?.failed) note(`metrics: ${sc.failed} of ${sc.n} scrapes under load failed (pair ${rep + 1})`, sc.errors)
  } finally {
    run.stop = await finish(c, `table metrics, ${armId}, pair ${rep + 1}`)
  }
  return run
}

async function run () {
  cli = pickCli()
  registerKind()
  const scrapeRuns = []
  for (const workers of SETTINGS.scrapeWorkers) scrapeRuns.push(await scrapeRun(workers))

  const runs = []
  for (let rep = 0; rep < SETTINGS.pairs; rep++) {
    // off and on alternate which goes first; the plain app takes the third place in turn
    const order = rep % 2 === 0 ? ['off', 'on'] : ['on', 'off']
    order.splice(rep % 3, 0, 'plain')
    for (const armId of order) runs.push(await throughputRun(armId, rep))
  }
  const summary = {}
  for (const armId of ARM_ORDER) {
    const mine = runs.filter((r) => r.arm === armId)
    summary[armId] = {
      n: mine.length,
      rps: median(mine.map((r) => r.light.rps)),
      p99Ms: median(mine.map((r) => r.light.latency.ok.p99)),
      failed: mine.reduce((s, r) => s + r.light.failed, 0),
      perRun: mine.map((r) => Math.round(r.light.rps)),
    }
  }
  const pairs = []
  for (let rep = 0; rep < SETTINGS.pairs; rep++) {
    const of = (armId) => runs.find((r) => r.rep === rep && r.arm === armId)?.light.rps ?? null
    pairs.push({ rep, on: of('on'), off: of('off'), plain: of('plain'), onVsOff: ratio(of('on'), of('off')), onVsPlain: ratio(of('on'), of('plain')) })
  }
  const value = ratio(summary.on.rps, summary.off.rps)
  const underLoad = runs.filter((r) => r.scrapesDuringLoad).map((r) => r.scrapesDuringLoad)
  return {
    settings: SETTINGS,
    cli: { path: path.relative(ROOT, cli.path), fallback: cli.fallback },
    scrapeRuns,
    runs,
    summary,
    pairs,
    scrapesUnderLoad: {
      n: underLoad.reduce((s, x) => s + x.n, 0),
      failed: underLoad.reduce((s, x) => s + x.failed, 0),
      missingNonZero: underLoad.reduce((s, x) => s + x.missingNonZero, 0),
      medianMs: median(underLoad.map((x) => x.latency.p50)),
      maxMs: underLoad.reduce((m, x) => Math.max(m, x.latency.max ?? 0), 0),
    },
    target: {
      value,
      medianOfPairs: median(pairs.map((p) => p.onVsOff)),
      onVsPlain: ratio(summary.on.rps, summary.plain.rps),
      pass: value === null ? null : value >= SETTINGS.target,
    },
  }
}

function print (r) {
  const s = r.settings
  const out = []
  out.push(`### Table metrics — the primary's /metrics (${r.cli.path}${r.cli.fallback ? ', the bundle did not run' : ''})`)
  out.push('')
  out.push('Scrapes: `bench/apps/metrics-light.js` (Express /light with a prom-client counter and histogram per response, `exposeMetrics(register)`), ' +
    `${s.primeRequests} /light requests, ${s.idleMs / 1000} s idle, one first scrape (its time in the "first" column), then ${s.scrapes} sequential \`GET /metrics\` over one keep-alive connection. ` +
    '"app counter": the aggregated `bench_http_requests_total` of /light read the priming requests exactly in every scrape. ' + otherLoadLine(r.scrapeRuns))
  out.push('')
  out.push(table(
    ['workers', 'first ms', 'scrapes ok', 'median ms', 'p99 ms', 'max ms', 'primary\'s scrape_duration (median) ms', 'body KB', 'workers_missing ≠ 0', 'app counter = requests'],
    r.scrapeRuns.map((x) => [
      `${x.workers}`, fmt(x.firstScrape?.ms, 1), `${x.summary.ok}/${x.summary.n}`, fmt(x.summary.latency.p50, 2), fmt(x.summary.latency.p99, 2), fmt(x.summary.latency.max, 2),
      fmt(x.summary.primaryDurationMs, 2), fmt(x.summary.bytes / 1024, 1), `${x.summary.missingNonZero}`,
      `${x.appCounterOk ? 'yes' : 'NO'} (${x.appCounter ?? '–'}/${x.primed})`,
    ]), 'rrrrrrrrrl'))
  out.push('')
  out.push(`/light throughput: ${s.throughputWorkers} workers, a closed loop of ${CONFIG.light.connections} keep-alive connections for ${CONFIG.light.durationS} s after a ` +
    `${CONFIG.warmup.durationS} s warm-up, a fresh cluster per run; ${s.pairs} rounds, off and on alternating which goes first. ` +
    'The "on" cluster runs with `--metrics-port` and is scraped every second during the measured load.')
  out.push('')
  out.push(table(['arm', 'n', 'req/s (median)', 'p99 ms', 'failed', 'req/s per run'],
    ARM_ORDER.map((a) => [ARMS[a].label, `${r.summary[a].n}`, fmt(r.summary[a].rps), fmt(r.summary[a].p99Ms, 1), `${r.summary[a].failed}`, r.summary[a].perRun.join(', ')]),
    'lrrrrl'))
  out.push('')
  out.push(table(['round', 'off req/s', 'on req/s', 'on / off', 'plain app req/s', 'on / plain'],
    r.pairs.map((p) => [`${p.rep + 1}`, fmt(p.off), fmt(p.on), fmtRatio(p.onVsOff), fmt(p.plain), fmtRatio(p.onVsPlain)]), 'rrrrrr'))
  out.push('')
  const u = r.scrapesUnderLoad
  out.push(`**Target: /light req/s with metrics on and scraped ≥ ${s.target}× metrics off: ${fmtRatio(r.target.value)} ${verdict(r.target.pass)}** ` +
    `(ratio of the medians; median of the per-round ratios ${fmtRatio(r.target.medianOfPairs)}). ` +
    `Against the app without prom-client: ${fmtRatio(r.target.onVsPlain)} (the app's own counter and histogram included). ` +
    `Scrapes during the loads: ${u.n - u.failed}/${u.n} answered, median ${fmt(u.medianMs, 1)} ms, max ${fmt(u.maxMs, 1)} ms, workers_missing ≠ 0 in ${u.missingNonZero}. ` +
    'Runs on this machine vary by ±15 %: read the per-round ratios. ' + otherLoadLine(r.runs.map((x) => x.light)))
  return out.join('\n')
}

export default {
  id: 'metrics',
  title: 'metrics: scrape latency and cost',
  run,
  print,
  loads: (result) => [...(result?.scrapeRuns ?? []), ...(result?.runs ?? []).map((r) => r.light)],
}
