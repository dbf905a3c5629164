// Table "dashboard" — what the dashboard costs. With 16 workers, in alternating runs of
// three arms: metrics on without the dashboard (`metrics.dashboard: false`), with the
// dashboard and no page open, and with a page open (a client of its event stream,
// which is what the primary serves to a browser): the primary's RSS once its rings
// exist (they are allocated whole at the first sample: the figure after 15 minutes is
// the same), and its CPU under a paced /light load. Then /light throughput under a
// closed loop with 2 workers (16 on 2 cores make a closed loop's figure swing by
// ±10 % from run to run), a page open or not, in alternating pairs.
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLI, KINDS, freePort, rssMb, start } from '../lib/contenders.js'
import { CLK_TCK, cpuTicks } from '../lib/cpu.js'
import { fmt, fmtRatio, median, ratio, table, verdict } from '../lib/stats.js'
import { CONFIG, HEAVY_APP, QUICK, REPS, finish, measure, otherLoadLine, progress, slim } from '../lib/shared.js'

const KIND = 'cr-dashboard'

const SETTINGS = {
  workers: 16,
  pairs: QUICK ? 1 : Math.max(3, REPS),
  settleMs: QUICK ? 3000 : 5000,
  paced: { path: '/light', connections: 16, rate: 400, durationS: QUICK ? 5 : 20 },
  throughput: { workers: CONFIG.workers, pairs: QUICK ? 1 : Math.max(5, REPS), load: { ...CONFIG.light, durationS: QUICK ? 2 : 8 } },
  targets: { rssMb: 3, cpuPctOfCore: 2, throughput: 0.98 },
}

const ARMS = {
  off: { label: 'metrics on, no dashboard', dashboard: false, page: false },
  closed: { label: 'dashboard, no page open', dashboard: true, page: false },
  open: { label: 'dashboard, a page open', dashboard: true, page: true },
}

let seq = 0

/** A page's stream: read and counted, as a browser would. */
function openPage (port) {
  return new Promise((resolve, reject) => {
    const page = { bytes: 0, events: 0, req: null }
    page.req = http.get({ host: '127.0.0.1', port, path: '/dashboard/stream', agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`the stream answered ${res.statusCode}`))
      res.on('data', (chunk) => {
        page.bytes += chunk.length
        page.events += chunk.toString('latin1').split('\n\n').length - 1
      })
      res.on('error', () => {})
      resolve(page)
    })
    page.req.on('error', reject)
  })
}

async function armRun (armId, rep, dir) {
  const arm = ARMS[armId]
  const port = await freePort()
  const mport = await freePort()
  const config = path.join(dir, `${armId}-${rep}.json`)
  fs.writeFileSync(config, JSON.stringify({ metrics: { port: mport, dashboard: arm.dashboard } }))
  progress(`table dashboard, pair ${rep + 1}/${SETTINGS.pairs}: ${arm.label}, ${SETTINGS.workers} workers`)
  const c = await start(KIND, { app: HEAVY_APP, workers: SETTINGS.workers, port, args: ['--config', config, '-n', `bench-dashboard-${process.pid}-${++seq}`] })
  const run = { arm: armId, rep, ...slim(c) }
  let page = null
  try {
    if (arm.page) page = await openPage(mport)
    await sleep(SETTINGS.settleMs)
    run.rssMb = rssMb(c.pid)
    const t0 = cpuTicks(c.pid)
    const w0 = performance.now()
    run.paced = await measure(c, SETTINGS.paced)
    const seconds = (performance.now() - w0) / 1000
    run.primaryCpuPctOfCore = Math.round(1000 * ((cpuTicks(c.pid) - t0) / CLK_TCK) / seconds) / 10
    // the primary and every worker: CPU per request at the fixed rate
    run.allCpuUsPerRequest = run.paced.cpu.oursPct === null ? null : (run.paced.cpu.oursPct / 100) * os.availableParallelism() * seconds * 1e6 / run.paced.ok
    if (page) run.page = { bytes: page.bytes, events: page.events }
    progress(`  RSS ${fmt(run.rssMb, 1)} MiB, primary CPU ${fmt(run.primaryCpuPctOfCore, 1)} % of a core at ${SETTINGS.paced.rate} req/s, all processes ${fmt(run.allCpuUsPerRequest)} µs per request` +
      (page ? `; the page got ${page.events} events, ${fmt(page.bytes / 1024, 1)} KiB` : ''))
  } finally {
    page?.req.destroy()
    run.stop = await finish(c, `table dashboard, ${armId}, pair ${rep + 1}`)
  }
  return run
}

/** /light under a closed loop, `workers` workers, a page open or not. */
async function throughputRun (armId, rep) {
  const { workers, load } = SETTINGS.throughput
  const port = await freePort()
  const mport = await freePort()
  progress(`table dashboard, throughput pair ${rep + 1}/${SETTINGS.throughput.pairs}: ${ARMS[armId].label}, ${workers} workers`)
  const c = await start(KIND, { app: HEAVY_APP, workers, port, args: ['--metrics-port', String(mport), '-n', `bench-dashboard-${process.pid}-${++seq}`] })
  const run = { arm: armId, rep, ...slim(c) }
  let page = null
  try {
    if (ARMS[armId].page) page = await openPage(mport)
    await measure(c, CONFIG.warmup)
    run.light = await measure(c, load)
    progress(`  /light ${fmt(run.light.rps)} req/s, failed ${run.light.failed}`)
  } finally {
    page?.req.destroy()
    run.stop = await finish(c, `table dashboard, throughput, ${armId}, pair ${rep + 1}`)
  }
  return run
}

async function run () {
  KINDS[KIND] = { label: 'cluster-run', argv: ({ app, workers }) => [CLI, app, '-w', String(workers)] }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cr-bench-dashboard-'))
  const runs = []
  try {
    for (let rep = 0; rep < SETTINGS.pairs; rep++) {
      // the arms take turns at going first
      const order = ['off', 'closed', 'open']
      for (let i = 0; i < rep % 3; i++) order.push(order.shift())
      for (const armId of order) runs.push(await armRun(armId, rep, dir))
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const throughputRuns = []
  for (let rep = 0; rep < SETTINGS.throughput.pairs; rep++) {
    for (const armId of rep % 2 === 0 ? ['closed', 'open'] : ['open', 'closed']) throughputRuns.push(await throughputRun(armId, rep))
  }
  const of = (armId, pick) => runs.filter((r) => r.arm === armId).map(pick)
  const rpsOf = (armId) => throughputRuns.filter((r) => r.arm === armId).map((r) => r.light.rps)
  const summary = Object.fromEntries(Object.keys(ARMS).map((armId) => [armId, {
    rssMb: median(of(armId, (r) => r.rssMb)),
    cpuPct: median(of(armId, (r) => r.primaryCpuPctOfCore)),
    allCpuUsPerRequest: median(of(armId, (r) => r.allCpuUsPerRequest)),
    rps: median(rpsOf(armId)),
    failed: of(armId, (r) => r.paced.failed).reduce((a, b) => a + b, 0) + throughputRuns.filter((r) => r.arm === armId).reduce((a, r) => a + r.light.failed, 0),
  }]))
  // per pair, then the median of the pairs: noise between pairs does not add up
  const pairs = Array.from({ length: SETTINGS.pairs }, (_, rep) => {
    const one = (armId) => runs.find((r) => r.rep === rep && r.arm === armId)
    return {
      rssMb: one('closed').rssMb - one('off').rssMb,
      cpuPct: one('open').primaryCpuPctOfCore - one('closed').primaryCpuPctOfCore,
    }
  })
  const throughputPairs = Array.from({ length: SETTINGS.throughput.pairs }, (_, rep) => {
    const rps = (armId) => throughputRuns.find((r) => r.rep === rep && r.arm === armId)?.light.rps ?? null
    return ratio(rps('open'), rps('closed'))
  })
  const value = {
    rssMb: median(pairs.map((p) => p.rssMb)),
    cpuPct: median(pairs.map((p) => p.cpuPct)),
    throughput: median(throughputPairs),
  }
  const t = SETTINGS.targets
  return {
    settings: SETTINGS,
    runs,
    throughputRuns,
    summary,
    pairs,
    throughputPairs,
    target: {
      value,
      pass: { rssMb: value.rssMb <= t.rssMb, cpuPct: value.cpuPct <= t.cpuPctOfCore, throughput: value.throughput >= t.throughput },
    },
  }
}

function print (r) {
  const s = r.settings
  const t = s.targets
  const out = []
  out.push('### Table dashboard — what the page costs')
  out.push('')
  out.push(`${s.workers} workers of \`bench/apps/express-heavy.js\`, metrics on, in ${s.pairs} rounds of three arms taking turns at going first. ` +
    `RSS: the primary's, ${s.settleMs / 1000} s after every worker is ready (the rings of 15 minutes are allocated whole at the first sample). ` +
    `CPU: the primary's user + system time while /light gets ${s.paced.rate} req/s over ${s.paced.connections} keep-alive connections for ${s.paced.durationS} s, in % of one core. ` +
    `Throughput: ${s.throughput.workers} workers (16 on 2 cores swing by ±10 % between closed-loop runs), /light under a closed loop of ${s.throughput.load.connections} connections for ${s.throughput.load.durationS} s, ${s.throughput.pairs} alternating pairs. ` +
    'A page open: one client of `/dashboard/stream` reading every event, as a browser does. ' + otherLoadLine(loads(r)))
  out.push('')
  out.push(table(
    ['arm', 'primary RSS MiB', 'primary CPU, % of a core', 'all processes, CPU µs per request', `/light req/s, ${s.throughput.workers} workers`, 'failed'],
    Object.entries(ARMS).map(([id, arm]) => [arm.label, fmt(r.summary[id].rssMb, 1), fmt(r.summary[id].cpuPct, 1), fmt(r.summary[id].allCpuUsPerRequest), fmt(r.summary[id].rps), fmt(r.summary[id].failed)]),
    'lrrrrr'))
  out.push('')
  const v = r.target.value
  out.push(table(
    ['target (median of the rounds)', 'measured', 'target', 'verdict'],
    [
      ['RSS with the dashboard − without', `${fmt(v.rssMb, 1)} MiB`, `≤ ${t.rssMb} MiB`, verdict(r.target.pass.rssMb)],
      ['primary CPU, a page open − none', `${fmt(v.cpuPct, 1)} % of a core`, `≤ +${t.cpuPctOfCore} %`, verdict(r.target.pass.cpuPct)],
      ['/light, a page open ÷ none', fmtRatio(v.throughput), `≥ ${t.throughput}×`, verdict(r.target.pass.throughput)],
    ], 'lrrl'))
  return out.join('\n')
}

function loads (r) {
  return r ? [...r.runs.map((x) => x.paced), ...r.throughputRuns.map((x) => x.light)] : []
}

export default { id: 'dashboard', title: 'the dashboard\'s cost', run, print, loads }
