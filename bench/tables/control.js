// Table "control" — control socket: status latency. How long `GET /status` takes
// through a cluster's unix control socket (in-process http.request) and through the
// CLI (`cluster-run status <name> --json`, a fresh node process each time), with 2
// and 16 workers on this machine, idle and while a CPU flood keeps every worker busy.
// Beside the CLI: what starting a bare `node -e 0` costs under the same conditions.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startLoad } from '../lib/client.js'
import { CLI, ROOT, freePort, start } from '../lib/contenders.js'
import { watchCpu } from '../lib/cpu.js'
import { fmt, max, median, summarize, table, verdict } from '../lib/stats.js'
import { QUICK, finish, note, otherLoadLine, progress, slim } from '../lib/shared.js'

const APP = path.join(ROOT, 'fixtures', 'apps', 'busy.js')

const SETTINGS = {
  workerCounts: [2, 16],
  socketCalls: QUICK ? 100 : 200,
  cliCalls: QUICK ? 40 : 200,
  nodeStarts: 20, // `node -e 0`, interleaved with the CLI calls
  warmupCalls: 5, // socket calls before the measured ones (not counted)
  spinMs: 200, // the flood's unit: GET /spin?ms=200
  floodPerWorker: 2, // requests in flight per worker
  saturatedLagMs: 100, // a worker counts as saturated when its eventLoopDelayMs is at least this
  settleTimeoutMs: 20_000, // the flood must saturate every worker within this
  floodCapMs: 45 * 60_000, // the flood stops by itself after this, whatever happens
  targetSocketP99Ms: 20, // under the flood, both worker counts
  callTimeoutMs: 30_000,
  floodSettleMs: 2000, // once every worker reads saturated, before the flood cell
  idleSettleMs: 1500, // after every worker is ready, before the idle cell (the first heartbeat reads 0)
}

/** Children of this table still running (CLI calls, `node -e 0`, the reference server), killed by PID on the way out. */
const children = new Set()
process.on('exit', () => { for (const child of children) { try { child.kill('SIGKILL') } catch {} } })

function envWith (extra) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CLUSTER_RUN_')) env[k] = v
  return { ...env, ...extra }
}

/** The smallest number of the list; null if any is missing or the list is empty. */
const minOf = (xs) => xs.length && xs.every((x) => typeof x === 'number') ? Math.min(...xs) : null
const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6
const round2 = (x) => Math.round(x * 100) / 100

/** One GET /status over the unix socket, timed from the request to the end of the body. */
function socketStatus (socketPath) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const req = http.request({ socketPath, path: '/status', agent: false, headers: { host: 'localhost' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { text += chunk })
      res.on('end', () => {
        const ms = msSince(t0)
        if (res.statusCode !== 200) return reject(new Error(`GET /status answered ${res.statusCode}: ${text.slice(0, 200)}`))
        try { resolve({ ms, status: JSON.parse(text) }) } catch (err) { reject(err) }
      })
      res.on('error', reject)
    })
    req.setTimeout(SETTINGS.callTimeoutMs, () => req.destroy(new Error(`GET /status: no answer within ${SETTINGS.callTimeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** Spawns `node <args>` and resolves with its wall time (spawn → exit with stdout closed), exit code and stdout. */
function timedNode (args, env) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c) => { stdout += c })
    child.stderr.setEncoding('utf8').on('data', (c) => { stderr += c })
    const timer = setTimeout(() => child.kill('SIGKILL'), SETTINGS.callTimeoutMs)
    child.on('error', (err) => { clearTimeout(timer); children.delete(child); reject(err) })
    child.on('close', (code, signal) => {
      const ms = msSince(t0)
      clearTimeout(timer)
      children.delete(child)
      resolve({ ms, code, signal, stdout, stderr })
    })
  })
}

/**
 * The CPU flood: a closed loop of `concurrency` keep-alive connections to
 * 127.0.0.1, each sending GET /spin?ms=N again as soon as the previous one is
 * answered (bench/lib/client.js). It stops when stop() is called or after `capMs`,
 * whichever comes first; the answers name the worker that ran them.
 */
function flood ({ port, concurrency, spinMs, capMs }) {
  const byPid = {}
  const classify = (res) => {
    if (res.status !== 200) return 'other'
    let pid = 'unknown'
    try { pid = JSON.parse(res.body.toString('utf8')).pid } catch {}
    byPid[pid] = (byPid[pid] ?? 0) + 1
    return 'ok'
  }
  const load = startLoad({ port, path: `/spin?ms=${spinMs}`, connections: concurrency, durationS: capMs / 1000, timeoutS: 60, classify })
  const stats = (r) => {
    const errors = { ...r.errorKinds }
    for (const [status, n] of Object.entries(r.statuses)) if (status !== '200') errors[`status ${status}`] = n
    const durationMs = Math.round(r.settledAt - r.startedAt)
    return { concurrency, spinMs, ok: r.ok, failed: r.failed, errors, byPid, durationMs, cappedOut: durationMs >= capMs }
  }
  return { stop: () => load.stop().then(stats) }
}

/**
 * The saturation figures of one status answer: every member's eventLoopDelayMs (the
 * p99 loop delay its latest heartbeat reported). A reading of 0 is an empty
 * heartbeat (no loop-delay sample since the previous beat, see the README), not an
 * idle loop: an idle worker reads about 20 ms (the monitor's resolution).
 */
function lagSample (status, workers) {
  const members = status.members ?? []
  const lags = members.map((m) => m.eventLoopDelayMs)
  const numeric = lags.filter((x) => typeof x === 'number')
  return {
    ids: members.map((m) => m.id),
    lags,
    min: numeric.length === lags.length && lags.length ? Math.min(...numeric) : null,
    saturated: lags.length === workers && numeric.length === workers && numeric.every((x) => x >= SETTINGS.saturatedLagMs),
  }
}

function lagSummary (samples, workers) {
  const readings = { high: 0, zero: 0, low: 0, missing: 0 } // >= saturatedLagMs, 0, 1..saturatedLagMs-1, null
  const highById = new Map()
  for (const s of samples) {
    s.lags.forEach((v, i) => {
      const kind = typeof v !== 'number' ? 'missing' : v === 0 ? 'zero' : v >= SETTINGS.saturatedLagMs ? 'high' : 'low'
      readings[kind]++
      if (kind === 'high') highById.set(s.ids[i], true)
    })
  }
  const all = samples.flatMap((s) => s.lags)
  return {
    answers: samples.length,
    answersAllHigh: samples.filter((s) => s.saturated).length,
    readings,
    workersSeenHigh: highById.size,
    workers,
    minLagMs: minOf(samples.map((s) => s.min)),
    medianLagMs: median(all),
    medianNonZeroLagMs: median(all.filter((x) => x !== 0)),
    minNonZeroLagMs: minOf(all.filter((x) => typeof x === 'number' && x !== 0)),
    maxLagMs: max(all),
  }
}

/** Two lag summaries of one cell (socket and CLI answers) as one. */
function mergeLag (a, b) {
  const readings = {}
  for (const k of Object.keys(a.readings)) readings[k] = a.readings[k] + b.readings[k]
  return {
    answers: a.answers + b.answers,
    answersAllHigh: a.answersAllHigh + b.answersAllHigh,
    readings,
    workersSeenHigh: Math.max(a.workersSeenHigh, b.workersSeenHigh), // both see the same workers
    workers: a.workers,
    minLagMs: minOf([a.minLagMs, b.minLagMs]),
    minNonZeroLagMs: minOf([a.minNonZeroLagMs, b.minNonZeroLagMs].filter((x) => x !== null)),
    maxLagMs: max([a.maxLagMs, b.maxLagMs]),
  }
}

/** Saturated: every worker read >= the limit at some point, and no reading showed a loop that ran freely (1..limit-1 ms, or none at all). */
const saturatedVerdict = (lag) => lag.workersSeenHigh === lag.workers && lag.readings.low === 0 && lag.readings.missing === 0

/** CPU time of some PIDs and of the whole machine, in clock ticks, for a share of all cores. */
function cpuTicks (pids) {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields
  let procs = 0
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
      procs += f[11] + f[12]
    } catch {}
  }
  const busy = user + nice + system + irq + softirq + steal
  return { procs, busy, total: busy + idle + iowait }
}

/** Call at the start; the returned function gives the PIDs' and the machine's busy share of all cores, in %. */
function watchShare (pids) {
  const a = cpuTicks(pids)
  return () => {
    const b = cpuTicks(pids)
    const total = b.total - a.total
    const pct = (x) => total > 0 ? Math.round((1000 * x) / total) / 10 : null
    return { pidsPct: pct(b.procs - a.procs), machineBusyPct: pct(b.busy - a.busy) }
  }
}

/**
 * The reference: a bare node:http server on a unix socket in its own process,
 * answering every request with the same bytes (the cluster's latest status), so the
 * socket figures can be told apart from what any process on this machine would get.
 */
async function startReference (socketPath, body) {
  const code = `const http = require('node:http'); const body = process.env.REF_BODY;
    const server = http.createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end(body) });
    process.on('SIGTERM', () => server.close(() => process.exit(0)));
    server.listen(process.env.REF_SOCKET, () => process.stdout.write('listening\\n'))`
  fs.rmSync(socketPath, { force: true })
  const child = spawn(process.execPath, ['-e', code], { env: { ...process.env, REF_SOCKET: socketPath, REF_BODY: body }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (c) => { stderr += c })
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`reference server not listening within 10 s: ${stderr}`)), 10_000)
    child.stdout.setEncoding('utf8').on('data', (c) => { if (c.includes('listening')) { clearTimeout(timer); resolve() } })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`reference server exited (${code}): ${stderr}`)) })
  })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  return {
    pid: child.pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const t = setTimeout(() => child.kill('SIGKILL'), 3000)
        await exited
        clearTimeout(t)
      }
      children.delete(child)
      fs.rmSync(socketPath, { force: true })
    },
  }
}

async function waitForSaturation (socketPath, workers) {
  const t0 = performance.now()
  let last = null
  while (performance.now() - t0 < SETTINGS.settleTimeoutMs) {
    const { status } = await socketStatus(socketPath)
    last = lagSample(status, workers)
    if (last.saturated) return { settleMs: Math.round(performance.now() - t0), last }
    await sleep(200)
  }
  return { settleMs: null, last }
}

/** One load condition: the socket calls alternating with the reference server's, then the CLI calls with `node -e 0` interleaved. */
async function measureCondition (c, { socketPath, refPath, name, env, workers, condition }) {
  const cell = { workers, condition }
  const shareDone = watchShare([...c.workerPids])
  let body = null
  for (let i = 0; i < SETTINGS.warmupCalls; i++) body = (await socketStatus(socketPath)).status
  // The reference answers the same bytes; its calls alternate with the cluster's, so both see the same moments of the load.
  const ref = await startReference(refPath, JSON.stringify(body))
  const socketMs = []
  const refMs = []
  const socketLags = []
  const cpuDone = watchCpu(c)
  try {
    for (let i = 0; i < SETTINGS.warmupCalls; i++) await socketStatus(refPath)
    for (let i = 0; i < SETTINGS.socketCalls; i++) {
      const r = await socketStatus(socketPath)
      socketMs.push(r.ms)
      socketLags.push(lagSample(r.status, workers))
      refMs.push((await socketStatus(refPath)).ms)
    }
  } finally {
    cell.socketLoad = { cpu: cpuDone() }
    await ref.stop()
  }
  cell.socket = summarize(socketMs)
  cell.reference = summarize(refMs)
  cell.statusBytes = Buffer.byteLength(JSON.stringify(body))
  cell.socketLag = lagSummary(socketLags, workers)
  progress(`  ${condition}: socket median ${fmt(cell.socket.p50, 2)} ms, p99 ${fmt(cell.socket.p99, 2)} ms; reference median ${fmt(cell.reference.p50, 2)} ms, p99 ${fmt(cell.reference.p99, 2)} ms` +
    ` (eventLoopDelayMs: min ${fmt(cell.socketLag.minLagMs)}, ${cell.socketLag.answersAllHigh}/${cell.socketLag.answers} answers with every worker ≥ ${SETTINGS.saturatedLagMs})`)

  const cliMs = []
  const nodeMs = []
  const cliLags = []
  const cliFailures = []
  const every = Math.max(1, Math.floor(SETTINGS.cliCalls / SETTINGS.nodeStarts))
  for (let i = 0; i < SETTINGS.cliCalls; i++) {
    if (i % every === 0 && nodeMs.length < SETTINGS.nodeStarts) {
      const bare = await timedNode(['-e', '0'], env)
      if (bare.code === 0) nodeMs.push(bare.ms)
    }
    const r = await timedNode([CLI, 'status', name, '--json'], env)
    let status = null
    try { status = JSON.parse(r.stdout) } catch {}
    if (r.code !== 0 || !status) {
      cliFailures.push({ code: r.code, signal: r.signal, stderr: r.stderr.trim().slice(-300) })
      continue
    }
    cliMs.push(r.ms)
    cliLags.push(lagSample(status, workers))
  }
  while (nodeMs.length < SETTINGS.nodeStarts) {
    const bare = await timedNode(['-e', '0'], env)
    if (bare.code === 0) nodeMs.push(bare.ms)
  }
  cell.cli = summarize(cliMs)
  cell.cliFailures = cliFailures
  cell.cliLag = lagSummary(cliLags, workers)
  cell.node = summarize(nodeMs)
  cell.lag = mergeLag(cell.socketLag, cell.cliLag)
  cell.saturated = saturatedVerdict(cell.lag)
  cell.cpuShare = shareDone()
  if (cliFailures.length) note(`table control, ${workers} workers ${condition}: ${cliFailures.length} of ${SETTINGS.cliCalls} CLI status calls failed`, cliFailures.slice(0, 5))
  progress(`  ${condition}: CLI median ${fmt(cell.cli.p50)} ms, p99 ${fmt(cell.cli.p99)} ms; node -e 0 median ${fmt(cell.node.p50)} ms` +
    ` (eventLoopDelayMs readings: ${JSON.stringify(cell.lag.readings)}, every worker ≥ ${SETTINGS.saturatedLagMs} at some point: ${cell.lag.workersSeenHigh}/${workers});` +
    ` workers used ${fmt(cell.cpuShare.pidsPct)} % of all cores (machine busy ${fmt(cell.cpuShare.machineBusyPct)} %)`)
  cell.raw = { socketMs: socketMs.map(round2), referenceMs: refMs.map(round2), cliMs: cliMs.map(round2), nodeMs: nodeMs.map(round2) }
  return cell
}

async function tableControl () {
  const cells = []
  const runs = []
  for (const workers of SETTINGS.workerCounts) {
    // A fresh, short, owner-only directory per cluster: the socket path stays far under 107 bytes.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-'))
    const name = `bench${workers}`
    const socketPath = path.join(dir, `${name}.sock`)
    const refPath = path.join(dir, 'ref.sock')
    const env = envWith({ CLUSTER_RUN_HOME: dir })
    const port = await freePort()
    progress(`table control: ${workers} workers (busy.js, socket ${socketPath})`)
    const c = await start('cr-rr', { app: APP, workers, port, env: { CLUSTER_RUN_HOME: dir }, args: ['--name', name] })
    const run = { ...slim(c), name, socketPath, socketPathBytes: Buffer.byteLength(socketPath) }
    let f = null
    try {
      // Past the workers' first timer heartbeat, so the idle readings are real ones.
      await sleep(SETTINGS.idleSettleMs)
      cells.push(await measureCondition(c, { socketPath, refPath, name, env, workers, condition: 'idle' }))

      const concurrency = SETTINGS.floodPerWorker * workers
      f = flood({ port, concurrency, spinMs: SETTINGS.spinMs, capMs: SETTINGS.floodCapMs })
      const settle = await waitForSaturation(socketPath, workers)
      await sleep(SETTINGS.floodSettleMs)
      if (settle.settleMs === null) note(`table control, ${workers} workers: the flood did not saturate every worker within ${SETTINGS.settleTimeoutMs} ms`, settle.last)
      const cell = await measureCondition(c, { socketPath, refPath, name, env, workers, condition: 'flood' })
      cell.settleMs = settle.settleMs
      const fl = await f.stop()
      f = null
      cell.flood = { ...fl, workersHit: Object.keys(fl.byPid).filter((p) => p !== 'unknown').length }
      if (fl.cappedOut) note(`table control, ${workers} workers: the flood reached its ${SETTINGS.floodCapMs / 1000} s cap before the measurement ended`, fl)
      if (fl.failed) note(`table control, ${workers} workers: ${fl.failed} flood requests failed`, fl.errors)
      progress(`  flood: ${fl.ok} /spin answered by ${cell.flood.workersHit}/${workers} workers in ${fmt(fl.durationMs / 1000, 1)} s, ${fl.failed} failed; saturated after ${fmt(settle.settleMs)} ms`)
      cells.push(cell)
    } finally {
      if (f) await f.stop()
      run.stop = await finish(c, `table control, ${workers} workers`)
      run.socketRemoved = !fs.existsSync(socketPath)
      if (!run.socketRemoved) note(`table control, ${workers} workers: the control socket was left behind after SIGTERM`, socketPath)
      fs.rmSync(dir, { recursive: true, force: true })
    }
    runs.push(run)
  }
  const targets = {}
  for (const workers of SETTINGS.workerCounts) {
    const flooded = cells.find((x) => x.workers === workers && x.condition === 'flood')
    const p99 = flooded?.socket.p99 ?? null
    const lag = flooded?.lag
    targets[workers] = {
      socketP99: { value: p99, pass: p99 === null ? null : p99 < SETTINGS.targetSocketP99Ms },
      saturation: { value: lag ? { ...lag, cpuShare: flooded.cpuShare } : null, pass: lag ? flooded.saturated : null },
    }
  }
  return { settings: SETTINGS, cells, runs, targets }
}

function printControl ({ settings, cells, targets }) {
  const out = []
  out.push(`### Control socket — status latency (cluster-run rr, fixtures/apps/busy.js, ${os.availableParallelism()} cores)`)
  out.push('')
  out.push(`Per cell: ${settings.socketCalls} sequential \`GET /status\` over the unix control socket (in-process http.request, a new connection each, ` +
    `timed with process.hrtime, after ${settings.warmupCalls} warm-up calls), each followed by the same call to a reference (a bare node:http server on a ` +
    'unix socket in its own process, answering the same bytes); then ' +
    `${settings.cliCalls} \`node dist/cli.js status <name> --json\` spawned one after another (wall time, spawn → exit), with ${settings.nodeStarts} ` +
    `\`node -e 0\` spread among them. Idle: ${settings.idleSettleMs / 1000} s after every worker is ready. Flood: ${settings.floodPerWorker} × workers ` +
    `keep-alive connections from the bench to 127.0.0.1, each sending \`/spin?ms=${settings.spinMs}\` again as soon as it is answered; the calls begin ` +
    `${settings.floodSettleMs / 1000} s after every worker first reads a loop lag ≥ ${settings.saturatedLagMs} ms and the flood stops after the last.`)
  out.push('')
  const rows = cells.map((x) => {
    const r = x.lag.readings
    const load = x.condition === 'idle' ? 'idle' : `flood (${settings.floodPerWorker * x.workers} × /spin)`
    return [
      String(x.workers), load,
      fmt(x.socket.p50, 2), fmt(x.socket.p99, 2),
      `${fmt(x.reference.p50, 2)} / ${fmt(x.reference.p99, 2)}`,
      fmt(x.cli.p50), fmt(x.cli.p99),
      fmt(x.node.p50), fmt(x.cli.p50 - x.node.p50),
      `${r.high} / ${r.zero} / ${r.low}`,
      `${x.lag.workersSeenHigh}/${x.workers}`,
      `${fmt(x.cpuShare.pidsPct)} %`,
    ]
  })
  out.push(table(
    ['workers', 'load', 'socket median ms', 'socket p99 ms', 'reference median / p99 ms', 'CLI median ms', 'CLI p99 ms', 'node -e 0 median ms', 'CLI − node -e 0 ms',
      `loop-lag readings ≥${settings.saturatedLagMs} / 0 / other`, `workers ≥${settings.saturatedLagMs} ms`, 'workers\' CPU'],
    rows, 'rlrrrrrrrrrr'))
  out.push('')
  out.push(`p99 is nearest-rank: the ${Math.ceil(0.99 * settings.socketCalls)}th of ${settings.socketCalls} socket calls, ` +
    `the ${Math.ceil(0.99 * settings.cliCalls)}th of ${settings.cliCalls} CLI calls. "CLI − node -e 0": the CLI's median minus the median start of a bare ` +
    'node under the same load, what the CLI costs beyond node\'s own startup. Loop-lag readings: every member\'s `eventLoopDelayMs` in every status ' +
    `answer of the cell (socket and CLI), counted as ≥ ${settings.saturatedLagMs} ms, 0 (a heartbeat with no loop-delay sample, see the README) and ` +
    `anything else (an idle worker reads about 20 ms). "workers ≥${settings.saturatedLagMs} ms": workers that read ≥ ${settings.saturatedLagMs} ms at least once. ` +
    '"workers\' CPU": their CPU time during the cell, in % of all cores.')
  out.push('')
  const floods = cells.filter((x) => x.flood)
  if (floods.length) {
    out.push('Flood: ' + floods.map((x) => `${x.workers} workers: ${x.flood.ok} /spin answered by ${x.flood.workersHit} of ${x.workers} workers in ` +
      `${fmt(x.flood.durationMs / 1000, 1)} s, ${x.flood.failed} failed, every worker read ≥ ${settings.saturatedLagMs} ms ${fmt(x.settleMs)} ms after it began`).join('; ') + '.')
    out.push('')
  }
  const t = (x, f) => x.value === null ? 'n/a' : `${f(x.value)} ${verdict(x.pass)}`
  out.push(table(['target', ...settings.workerCounts.map((w) => `${w} workers`)], [
    [`socket p99 < ${settings.targetSocketP99Ms} ms under the flood`, ...settings.workerCounts.map((w) => t(targets[w].socketP99, (v) => `${fmt(v, 2)} ms`))],
    [`the flood saturates every worker (each read ≥ ${settings.saturatedLagMs} ms; no reading of 1–${settings.saturatedLagMs - 1} ms)`,
      ...settings.workerCounts.map((w) => t(targets[w].saturation, (v) => `${v.workersSeenHigh}/${v.workers}, min non-zero ${fmt(v.minNonZeroLagMs)} ms`))],
  ], 'lll'))
  out.push('')
  out.push(otherLoadLine(cells.map((x) => x.socketLoad)) + ' (during the socket calls; the reference server counts as other.)')
  return out.join('\n')
}

export default {
  id: 'control',
  title: 'control socket: status latency',
  run: () => tableControl(),
  print: printControl,
  loads: (result) => (result?.cells ?? []).map((x) => x.socketLoad),
}
