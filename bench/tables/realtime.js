// Table "realtime" — what sticky sessions cost, and a rolling reload with open
// WebSockets. (1) /light req/s over keep-alive connections under
// `schedulingPolicy: 'sticky'` against rr, and (2) the rate at which the cluster
// takes new connections (one request per connection), with the primary's CPU
// time per connection, in alternating runs of the same bench run. (3) A 4-worker
// rolling reload (SIGHUP) with 200 open WebSockets: how long it takes, the close
// codes the clients saw, how many reconnected and how many were closed more than once,
// with drainWebSockets() and with nothing registered by the app under rr, and with
// drainWebSockets() under none and reuseport.
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import { KINDS, ROOT, appPath, freePort, start } from '../lib/contenders.js'
import { watchCpu } from '../lib/cpu.js'
import { load } from '../lib/client.js'
import { fmt, fmtRatio, max, median, ratio, summarize, table } from '../lib/stats.js'
import { CONFIG, HEAVY_APP, QUICK, REPS, finish, note, otherLoadLine, progress, slim, strip } from '../lib/shared.js'

const WS_APP = appPath('ws-echo.js')
const BUNDLE = path.join(ROOT, 'dist', 'bundle', 'cli.js')
const TSC_CLI = path.join(ROOT, 'dist', 'cli.js')
const KIND = 'cr-realtime'

const SETTINGS = {
  workers: CONFIG.workers,
  pairs: QUICK ? REPS : Math.max(3, REPS),
  keepAlive: { path: '/light', connections: 100, durationS: QUICK ? 2 : 5 },
  handoff: { path: '/light', concurrency: 50, durationS: QUICK ? 2 : 5, timeoutMs: 10_000 },
  ws: {
    workers: 4,
    clients: 200,
    reps: QUICK ? 1 : Math.max(2, REPS),
    replyDelayMs: 50, // the app answers every message after this (some exchanges are in flight at any time)
    messageEveryMs: 500, // each client sends one message this often
    settleMs: 1000, // all clients open → SIGHUP
    reconnectWindowMs: 5000, // a client counts as reconnected if it is open again within this of its close
    firstRetryMs: 50, // a closed client reconnects after this, then every retryMs
    retryMs: 100,
    openTimeoutMs: 20_000,
  },
}

/** The HTTP arms: how the cluster places connections. Every arm's clients send the same requests (a distinct X-Forwarded-For per connection). */
const ARMS = {
  rr: { label: 'rr', args: () => ['--scheduling-policy', 'rr'] },
  sticky: { label: 'sticky, by address (every client is 127.0.0.1)', args: () => ['--scheduling-policy', 'sticky'] },
  'sticky-xff': { label: 'sticky, by x-forwarded-for (distinct per connection)', args: (dir) => ['--config', stickyXffConfig(dir)] },
}
const ARM_ORDER = ['rr', 'sticky', 'sticky-xff']

/** The WebSocket reload's runs: what the app registered for the drain, and the scheduling policy asked for. */
const WS_VARIANTS = {
  helper: { drain: 'helper', policy: 'rr' },
  none: { drain: 'none', policy: 'rr' },
  'helper-none': { drain: 'helper', policy: 'none' },
  'helper-reuseport': { drain: 'helper', policy: 'reuseport' },
}
const WS_ORDER = Object.keys(WS_VARIANTS)

const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 } })()

/** utime + stime of one process (not its children), in ms; null if gone. */
function cpuMs (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
    return ((f[11] + f[12]) * 1000) / CLK_TCK
  } catch {
    return null
  }
}

/** The CLI as it ships (package.json bin: dist/bundle/cli.js); tsc's dist/cli.js if the bundle does not run. */
function pickCli () {
  const r = spawnSync(process.execPath, [BUNDLE, '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 15_000 })
  if (r.status === 0) return { path: BUNDLE, fallback: false }
  note(`realtime table: dist/bundle/cli.js does not run (${(r.stderr || r.error?.message || '').trim().split('\n').find((l) => /Error/.test(l)) ?? `exit ${r.status}`}); measured with dist/cli.js instead`, { stderr: (r.stderr ?? '').slice(-800) })
  return { path: TSC_CLI, fallback: true }
}

let cli = null
let seq = 0
/** A cluster name of its own for every cluster: the default (the package name) collides with any other cluster-run of this user. */
const clusterName = () => `bench-realtime-${process.pid}-${++seq}`

function stickyXffConfig (dir) {
  const file = path.join(dir, 'sticky-xff.config.json')
  if (!fs.existsSync(file)) fs.writeFileSync(file, JSON.stringify({ schedulingPolicy: 'sticky', sticky: { by: { header: 'x-forwarded-for' } } }) + '\n')
  return file
}

/** A distinct client address for connection n, as a proxy would put it in X-Forwarded-For. */
const clientIp = (n) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`

/** /light over keep-alive connections (a closed loop), each with an X-Forwarded-For of its own. */
function keepAliveLoad ({ port, path: urlPath, connections, durationS }) {
  return load({ port, path: urlPath, connections, durationS, timeoutS: 30, headers: (n) => ({ 'x-forwarded-for': clientIp(n) }) })
}

/**
 * New connections as fast as the cluster takes them: `concurrency` lanes, each
 * opening a connection, sending one GET with `Connection: close` (and its own
 * X-Forwarded-For), reading the response to its end, and starting over. The
 * answers name the worker's pid: the share of the busiest worker.
 */
async function handoffLoad ({ port, path: urlPath, concurrency, durationS, timeoutMs }) {
  const perPid = {}
  const classify = (res) => {
    if (res.status < 200 || res.status >= 300) return 'other'
    const pid = /"pid":(\d+)/.exec(res.body.toString('latin1'))?.[1] ?? '?'
    perPid[pid] = (perPid[pid] ?? 0) + 1
    return 'ok'
  }
  const r = await load({
    port,
    path: urlPath,
    connections: concurrency,
    keepAlive: false,
    durationS,
    timeoutS: timeoutMs / 1000,
    classify,
    headers: (n) => ({ 'x-forwarded-for': clientIp(n) }),
  })
  return { ...r, concurrency, perPid, busiestWorkerShare: r.ok ? Math.max(...Object.values(perPid)) / r.ok : null, connPerS: r.rps }
}

/** A load with the primary's own CPU time (utime + stime) and the machine's other load recorded. */
async function withPrimaryCpu (c, fn) {
  const cpuDone = watchCpu(c)
  const before = cpuMs(c.pid)
  const t0 = performance.now()
  const result = await fn()
  const after = cpuMs(c.pid)
  result.cpu = cpuDone()
  result.primaryCpuMs = before === null || after === null ? null : after - before
  result.primaryCpuPct = result.primaryCpuMs === null ? null : (100 * result.primaryCpuMs) / (performance.now() - t0)
  return result
}

async function httpRun (armId, rep, dir) {
  const arm = ARMS[armId]
  const port = await freePort()
  progress(`table realtime, round ${rep + 1}/${SETTINGS.pairs}: ${arm.label}`)
  const c = await start(KIND, { app: HEAVY_APP, workers: SETTINGS.workers, port, args: ['-n', clusterName(), ...arm.args(dir)] })
  const run = { arm: armId, rep, ...slim(c) }
  try {
    await load({ port, ...CONFIG.warmup })
    run.keepAlive = await withPrimaryCpu(c, () => keepAliveLoad({ port, ...SETTINGS.keepAlive }))
    const k = run.keepAlive
    progress(`  keep-alive /light ${fmt(k.rps)} req/s, p99 ${fmt(k.latency.ok.p99, 1)} ms, failed ${k.failed}, primary CPU ${fmt(k.primaryCpuPct, 1)} %`)
    run.handoff = await withPrimaryCpu(c, () => handoffLoad({ port, ...SETTINGS.handoff }))
    const h = run.handoff
    h.primaryUsPerConn = h.primaryCpuMs === null || !h.ok ? null : (1000 * h.primaryCpuMs) / h.ok
    progress(`  new connections ${fmt(h.connPerS)}/s, failed ${h.failed} ${JSON.stringify(h.errorKinds)}, primary ${fmt(h.primaryUsPerConn)} µs CPU per connection (${fmt(h.primaryCpuPct, 1)} % of a core), busiest worker ${fmt(100 * h.busiestWorkerShare)} %`)
    if (k.failed) note(`realtime: keep-alive /light under ${arm.label} (round ${rep + 1}) had ${k.failed} failed requests`, { errorKinds: k.errorKinds, statuses: k.statuses })
    if (h.failed) note(`realtime: ${h.failed} of ${h.sent} new connections under ${arm.label} (round ${rep + 1}) failed`, { errorKinds: h.errorKinds, statuses: h.statuses })
  } finally {
    run.stop = await finish(c, `table realtime, ${armId}, round ${rep + 1}`)
  }
  return run
}

/**
 * `n` WebSocket clients that send a message every `messageEveryMs`, note every close
 * of an open connection (code, pending replies) and reconnect after it: first after
 * firstRetryMs, then every retryMs while the upgrade fails.
 */
function wsFleet ({ port, n, messageEveryMs, firstRetryMs, retryMs }) {
  const fleet = { clients: [], closes: [], failedUpgrades: {}, stopping: false }
  const connect = (cl) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
    cl.ws = ws
    let opened = false
    ws.on('open', () => {
      opened = true
      cl.open = true
      cl.pending = []
      cl.closeFrameAt = null
      cl.opens.push({ at: performance.now(), pid: null })
      // when the server's close frame arrives (ws has no public event for it; its 'close' comes after the closing handshake)
      ws._receiver?.on('conclude', () => { cl.closeFrameAt ??= performance.now() })
    })
    ws.on('message', (data) => {
      let m
      try { m = JSON.parse(String(data)) } catch { return }
      if (m.hello) {
        cl.pid = m.hello
        cl.opens.at(-1).pid = m.hello
      } else if ('echo' in m) {
        cl.pending.shift()
        cl.answered++
      }
    })
    ws.on('error', (err) => {
      if (opened) return
      const kind = err.code ?? err.message
      fleet.failedUpgrades[kind] = (fleet.failedUpgrades[kind] ?? 0) + 1
    })
    ws.on('close', (code, reason) => {
      cl.open = false
      if (opened && !fleet.stopping) {
        const at = performance.now()
        // the messages still unanswered, by how long before the server's close frame arrived they were sent
        const frameAt = cl.closeFrameAt ?? at
        const rec = { client: cl.i, code, reason: String(reason), at, closeFrameMs: Math.round(at - frameAt), pid: cl.pid, pendingAgesMs: cl.pending.map((t) => Math.round(frameAt - t)) }
        cl.closes.push(rec)
        fleet.closes.push(rec)
      }
      if (fleet.stopping) return
      setTimeout(() => { if (!fleet.stopping) connect(cl) }, opened ? firstRetryMs : retryMs)
    })
  }
  for (let i = 0; i < n; i++) {
    const cl = { i, ws: null, open: false, pid: null, pending: [], sent: 0, answered: 0, opens: [], closes: [] }
    fleet.clients.push(cl)
    connect(cl)
  }
  // each client sends every messageEveryMs, spread over the interval
  const slots = 10
  let tick = 0
  const timer = setInterval(() => {
    const k = tick++ % slots
    for (const cl of fleet.clients) {
      if (cl.i % slots !== k || !cl.open || cl.ws.readyState !== WebSocket.OPEN) continue
      cl.pending.push(performance.now())
      cl.sent++
      cl.ws.send(JSON.stringify({ n: cl.sent }))
    }
  }, messageEveryMs / slots)
  fleet.stop = async () => {
    fleet.stopping = true
    clearInterval(timer)
    for (const cl of fleet.clients) { try { cl.ws.close(1000) } catch {} }
    const deadline = performance.now() + 2000
    while (fleet.clients.some((cl) => cl.ws.readyState !== WebSocket.CLOSED) && performance.now() < deadline) await sleep(20)
    for (const cl of fleet.clients) { try { cl.ws.terminate() } catch {} }
  }
  return fleet
}

async function until (condition, timeoutMs, everyMs = 20) {
  const deadline = performance.now() + timeoutMs
  while (!condition()) {
    if (performance.now() > deadline) return false
    await sleep(everyMs)
  }
  return true
}

const countBy = (xs, key) => {
  const out = {}
  for (const x of xs) { const k = key(x); out[k] = (out[k] ?? 0) + 1 }
  return out
}

/** The workers of a cluster-run primary that serve (forked, not draining, not exited). */
function serving (c) {
  const alive = new Map()
  for (const e of c.events) {
    if (e.event === 'worker.fork') alive.set(e.pid, true)
    if (e.event === 'worker.drain' || e.event === 'worker.exit') alive.delete(e.pid)
  }
  return [...alive.keys()]
}

async function wsRun (variant, rep) {
  const cfg = SETTINGS.ws
  const port = await freePort()
  const { drain, policy } = WS_VARIANTS[variant]
  const env = { DELAY_MS: String(cfg.replyDelayMs), ...(drain === 'helper' ? { WS_DRAIN: 'helper' } : {}) }
  progress(`table realtime, WebSockets ${rep + 1}/${cfg.reps}: ${drain === 'helper' ? 'drainWebSockets' : 'nothing registered'}, ${policy}, ${cfg.workers} workers, ${cfg.clients} clients, SIGHUP`)
  const c = await start(KIND, { app: WS_APP, workers: cfg.workers, port, env, args: ['-n', clusterName(), '--scheduling-policy', policy] })
  // the policy that ran (reuseport falls back to rr where Node lacks it)
  const run = { variant, rep, policy: c.events.find((e) => e.event === 'primary.start')?.schedulingPolicy ?? null, ...slim(c) }
  const fleet = wsFleet({ port, n: cfg.clients, messageEveryMs: cfg.messageEveryMs, firstRetryMs: cfg.firstRetryMs, retryMs: cfg.retryMs })
  try {
    const opened = await until(() => fleet.clients.every((cl) => cl.open && cl.pid), cfg.openTimeoutMs)
    run.openBefore = fleet.clients.filter((cl) => cl.open).length
    if (!opened) throw new Error(`only ${run.openBefore} of ${cfg.clients} WebSockets open after ${cfg.openTimeoutMs} ms`)
    run.perWorkerBefore = countBy(fleet.clients, (cl) => cl.pid)
    run.upgradeFailuresBefore = { ...fleet.failedUpgrades }
    await sleep(cfg.settleMs)
    const closesBefore = fleet.closes.length
    for (const k of Object.keys(fleet.failedUpgrades)) delete fleet.failedUpgrades[k]
    const oldPids = serving(c)
    const from = c.events.length
    const sentAt = performance.now()
    c.child.kill('SIGHUP')
    const end = await c.waitFor((e) => e.event === 'reload.complete' || e.event === 'reload.aborted', { from, timeoutMs: 60_000, what: 'reload.complete' })
    run.reloadEvent = end.event
    run.reloadMs = end.at - sentAt
    run.reportedMs = end.durationMs ?? null
    const exitOf = (pid) => c.events.slice(from).find((e) => e.event === 'worker.exit' && e.pid === pid)
    await c.waitFor(() => oldPids.every(exitOf), { from, timeoutMs: 60_000, what: 'the exit of every old worker' })
    const exits = oldPids.map(exitOf)
    run.lastOldExitMs = Math.max(...exits.map((e) => e.at)) - sentAt
    run.oldExits = exits.map((e) => ({ pid: e.pid, reason: e.reason, code: e.code, signal: e.signal, connectionsDestroyed: e.connectionsDestroyed ?? 0, atMs: Math.round(e.at - sentAt) }))
    // until every client is open again on a new worker, or the reconnect window after the last close is over
    const newPids = new Set(serving(c))
    await until(() => {
      const last = fleet.closes.length ? fleet.closes.at(-1).at : sentAt
      return performance.now() > last + cfg.reconnectWindowMs ||
        fleet.clients.every((cl) => cl.open && newPids.has(cl.pid))
    }, cfg.reconnectWindowMs + 30_000)
    const settledAt = performance.now()

    const closes = fleet.closes.slice(closesBefore)
    run.closesBeforeSighup = closesBefore
    run.closeCodes = countBy(closes, (x) => x.code)
    run.closes = closes.length
    run.clientsClosed = new Set(closes.map((x) => x.client)).size
    run.closesPerClient = countBy(fleet.clients.filter((cl) => cl.closes.length), (cl) => cl.closes.length)
    run.lostReplyAgesMs = closes.flatMap((x) => x.pendingAgesMs).sort((a, b) => a - b)
    run.lostReplies = run.lostReplyAgesMs.length
    const reconnectMs = closes.map((x) => {
      const next = fleet.clients[x.client].opens.find((o) => o.at > x.at)
      return next ? next.at - x.at : null
    })
    run.reconnectedWithinWindow = reconnectMs.filter((ms) => ms !== null && ms <= cfg.reconnectWindowMs).length
    run.reconnect = summarize(reconnectMs.filter((ms) => ms !== null))
    run.failedUpgrades = { ...fleet.failedUpgrades }
    run.openAtEnd = fleet.clients.filter((cl) => cl.open).length
    run.onNewWorkersAtEnd = fleet.clients.filter((cl) => cl.open && newPids.has(cl.pid)).length
    run.perWorkerAtEnd = countBy(fleet.clients.filter((cl) => cl.open), (cl) => cl.pid)
    run.settledMs = settledAt - sentAt
    const forkAt = new Map(c.events.slice(from).filter((e) => e.event === 'worker.fork').map((e) => [e.pid, e.at]))
    run.bootMs = c.events.slice(from).filter((e) => e.event === 'worker.ready' && forkAt.has(e.pid)).map((e) => Math.round(e.at - forkAt.get(e.pid)))
    run.events = c.events.slice(from).filter((e) => e.event.startsWith('worker.') || e.event.startsWith('reload.')).map((e) => ({ ...strip(e), atMs: Math.round(e.at - sentAt) }))
    const codes = Object.entries(run.closeCodes).map(([k, v]) => `${k}×${v}`).join(', ') || 'none'
    progress(`  reload.complete ${fmt(run.reloadMs)} ms, last old worker exit ${fmt(run.lastOldExitMs)} ms; ${run.closes} closes (${codes}) of ${run.clientsClosed} clients, ` +
      `reconnected within ${cfg.reconnectWindowMs / 1000} s ${run.reconnectedWithinWindow}/${run.closes} (median ${fmt(run.reconnect.p50)} ms); lost replies ${run.lostReplies}; ` +
      `open on new workers at the end ${run.onNewWorkersAtEnd}/${cfg.clients}; failed upgrades ${JSON.stringify(run.failedUpgrades)}`)
    if (run.reloadEvent !== 'reload.complete') note(`realtime: the reload with WebSockets (${variant}, rep ${rep + 1}) ended with ${run.reloadEvent}`, run.events)
    if (run.onNewWorkersAtEnd !== cfg.clients) note(`realtime: ${cfg.clients - run.onNewWorkersAtEnd} of ${cfg.clients} WebSocket clients were not open on a new worker after the reload (${variant}, rep ${rep + 1})`, { perWorkerAtEnd: run.perWorkerAtEnd })
  } finally {
    await fleet.stop()
    run.stop = await finish(c, `table realtime, WebSockets ${variant}, rep ${rep + 1}`)
  }
  return run
}

async function run () {
  cli = pickCli()
  KINDS[KIND] = { label: 'cluster-run', argv: ({ app, workers }) => [cli.path, app, '-w', String(workers)] }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-run-bench-realtime-'))
  const runs = []
  const wsRuns = []
  try {
    for (let rep = 0; rep < SETTINGS.pairs; rep++) {
      const order = [...ARM_ORDER.slice(rep % 3), ...ARM_ORDER.slice(0, rep % 3)]
      if (rep % 2 === 1) order.reverse()
      for (const armId of order) runs.push(await httpRun(armId, rep, dir))
    }
    for (let rep = 0; rep < SETTINGS.ws.reps; rep++) {
      const k = rep % WS_ORDER.length
      for (const variant of [...WS_ORDER.slice(k), ...WS_ORDER.slice(0, k)]) wsRuns.push(await wsRun(variant, rep))
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }

  const summary = {}
  for (const armId of ARM_ORDER) {
    const mine = runs.filter((r) => r.arm === armId)
    summary[armId] = {
      n: mine.length,
      rps: median(mine.map((r) => r.keepAlive.rps)),
      p99Ms: median(mine.map((r) => r.keepAlive.latency.ok.p99)),
      kaFailed: mine.reduce((s, r) => s + r.keepAlive.failed, 0),
      kaPrimaryCpuPct: median(mine.map((r) => r.keepAlive.primaryCpuPct)),
      rpsPerRun: mine.map((r) => Math.round(r.keepAlive.rps)),
      connPerS: median(mine.map((r) => r.handoff.connPerS)),
      connPerRun: mine.map((r) => Math.round(r.handoff.connPerS)),
      connFailed: mine.reduce((s, r) => s + r.handoff.failed, 0),
      primaryUsPerConn: median(mine.map((r) => r.handoff.primaryUsPerConn)),
      handoffPrimaryCpuPct: median(mine.map((r) => r.handoff.primaryCpuPct)),
      busiestWorkerShare: median(mine.map((r) => r.handoff.busiestWorkerShare)),
      connectP99Ms: median(mine.map((r) => r.handoff.latency.ok.p99)),
    }
  }
  const rounds = []
  for (let rep = 0; rep < SETTINGS.pairs; rep++) {
    const of = (armId) => runs.find((r) => r.rep === rep && r.arm === armId)
    const row = { rep }
    for (const armId of ['sticky', 'sticky-xff']) {
      row[armId] = {
        rpsVsRr: ratio(of(armId)?.keepAlive.rps, of('rr')?.keepAlive.rps),
        connVsRr: ratio(of(armId)?.handoff.connPerS, of('rr')?.handoff.connPerS),
      }
    }
    rounds.push(row)
  }
  const vsRr = {}
  for (const armId of ['sticky', 'sticky-xff']) {
    vsRr[armId] = {
      rps: ratio(summary[armId].rps, summary.rr.rps),
      connPerS: ratio(summary[armId].connPerS, summary.rr.connPerS),
      primaryUsPerConn: ratio(summary[armId].primaryUsPerConn, summary.rr.primaryUsPerConn),
    }
  }

  const wsSummary = {}
  for (const variant of WS_ORDER) {
    const mine = wsRuns.filter((r) => r.variant === variant)
    const codes = {}
    for (const r of mine) for (const [k, v] of Object.entries(r.closeCodes ?? {})) codes[k] = (codes[k] ?? 0) + v
    const upgrades = {}
    for (const r of mine) for (const [k, v] of Object.entries(r.failedUpgrades ?? {})) upgrades[k] = (upgrades[k] ?? 0) + v
    wsSummary[variant] = {
      n: mine.length,
      policies: [...new Set(mine.map((r) => r.policy))],
      reloadMs: median(mine.map((r) => r.reloadMs)),
      reloadMsPerRun: mine.map((r) => Math.round(r.reloadMs)),
      lastOldExitMs: median(mine.map((r) => r.lastOldExitMs)),
      lastOldExitMsPerRun: mine.map((r) => Math.round(r.lastOldExitMs)),
      bootMs: median(mine.flatMap((r) => r.bootMs ?? [])),
      closeCodes: codes,
      closes: mine.reduce((s, r) => s + (r.closes ?? 0), 0),
      clientsClosed: median(mine.map((r) => r.clientsClosed)),
      closedTwiceOrMore: mine.reduce((s, r) => s + Object.entries(r.closesPerClient ?? {}).filter(([k]) => Number(k) >= 2).reduce((a, [, v]) => a + v, 0), 0),
      reconnected: mine.reduce((s, r) => s + (r.reconnectedWithinWindow ?? 0), 0),
      reconnectP50Ms: median(mine.map((r) => r.reconnect?.p50)),
      reconnectMaxMs: max(mine.map((r) => r.reconnect?.max)),
      lostReplies: mine.reduce((s, r) => s + (r.lostReplies ?? 0), 0),
      lostReplyMaxAgeMs: max(mine.flatMap((r) => r.lostReplyAgesMs ?? [])),
      lostReplyOlderThanDelay: mine.reduce((s, r) => s + (r.lostReplyAgesMs ?? []).filter((ms) => ms > SETTINGS.ws.replyDelayMs).length, 0),
      onNewWorkersAtEnd: mine.map((r) => r.onNewWorkersAtEnd),
      connectionsDestroyed: mine.reduce((s, r) => s + (r.oldExits ?? []).reduce((a, e) => a + e.connectionsDestroyed, 0), 0),
      exitReasons: countBy(mine.flatMap((r) => r.oldExits ?? []), (e) => e.reason),
      failedUpgrades: upgrades,
    }
  }
  return { settings: SETTINGS, cli: { path: path.relative(ROOT, cli.path), fallback: cli.fallback }, runs, summary, rounds, vsRr, wsRuns, wsSummary }
}

function print (r) {
  const s = r.settings
  const out = []
  out.push(`### Table realtime — sticky sessions against rr, and a rolling reload with open WebSockets (${r.cli.path}${r.cli.fallback ? ', the bundle did not run' : ''})`)
  out.push('')
  out.push(`${s.workers} workers, the Express /light of table 1, a fresh cluster per run, ${s.pairs} rounds with the order of the arms changing. ` +
    `Keep-alive: a closed loop of ${s.keepAlive.connections} connections for ${s.keepAlive.durationS} s after a ${CONFIG.warmup.durationS} s warm-up. ` +
    `New connections: ${s.handoff.concurrency} loops, each opening a connection, sending one GET with \`Connection: close\` and reading the answer, for ${s.handoff.durationS} s. ` +
    'Every connection carries its own X-Forwarded-For in every arm; only "sticky, by x-forwarded-for" places connections by it. ' +
    'Primary CPU: utime + stime of the primary process (/proc/<pid>/stat) during the load.')
  out.push('')
  const rows = ARM_ORDER.map((a) => {
    const x = r.summary[a]
    const v = r.vsRr[a]
    return [ARMS[a].label, `${x.n}`, fmt(x.rps), a === 'rr' ? '1.00×' : fmtRatio(v.rps), fmt(x.p99Ms, 1), fmt(x.kaPrimaryCpuPct, 1),
      fmt(x.connPerS), a === 'rr' ? '1.00×' : fmtRatio(v.connPerS), `${x.connFailed}`, fmt(x.primaryUsPerConn), fmt(x.handoffPrimaryCpuPct, 0), fmt(100 * x.busiestWorkerShare, 0)]
  })
  out.push(table(['policy', 'n', 'keep-alive req/s', 'vs rr', 'p99 ms', 'primary CPU %', 'new conn/s', 'vs rr', 'conn failed', 'primary µs CPU / conn', 'primary CPU %', 'busiest worker %'], rows, 'lrrrrrrrrrrr'))
  out.push('')
  out.push(table(['round', 'sticky req/s vs rr', 'sticky-xff req/s vs rr', 'sticky conn/s vs rr', 'sticky-xff conn/s vs rr', 'req/s per run (rr / sticky / xff)', 'conn/s per run (rr / sticky / xff)'],
    r.rounds.map((x, i) => [`${x.rep + 1}`, fmtRatio(x.sticky.rpsVsRr), fmtRatio(x['sticky-xff'].rpsVsRr), fmtRatio(x.sticky.connVsRr), fmtRatio(x['sticky-xff'].connVsRr),
      ARM_ORDER.map((a) => r.summary[a].rpsPerRun[i] ?? '–').join(' / '), ARM_ORDER.map((a) => r.summary[a].connPerRun[i] ?? '–').join(' / ')]), 'rrrrrll'))
  out.push('')
  out.push('"primary CPU %" is of one core over the load; "primary µs CPU / conn" = the primary\'s CPU time during the new-connection load ÷ the connections answered; ' +
    '"busiest worker %" = the share of those connections answered by the busiest worker (the answer names its pid). ' +
    otherLoadLine(r.runs.flatMap((x) => [x.keepAlive, x.handoff])))
  out.push('')
  const w = s.ws
  out.push(`Rolling reload with WebSockets: \`bench/apps/ws-echo.js\` (ws), ${w.workers} workers, ${w.clients} clients, each sending a message every ${w.messageEveryMs} ms ` +
    `(answered after ${w.replyDelayMs} ms); ${w.settleMs / 1000} s after all are open, SIGHUP. A client whose connection closes reconnects after ${w.firstRetryMs} ms, ` +
    `then every ${w.retryMs} ms while the upgrade fails; "reconnected" counts closes followed by an open connection within ${w.reconnectWindowMs / 1000} s.`)
  out.push('')
  const label = { helper: 'drainWebSockets (WS_DRAIN=helper)', none: 'nothing registered' }
  out.push(table(['app', 'policy that ran', 'n', 'SIGHUP → reload.complete ms', 'SIGHUP → last old worker exit ms', 'new worker boot ms', 'close codes seen (all runs)', 'closes', 'closed ≥ 2×', 'reconnected', 'reconnect p50 / max ms', 'replies lost', 'open on new workers at the end', 'connectionsDestroyed', 'failed upgrades (all runs)'],
    WS_ORDER.map((v) => {
      const x = r.wsSummary[v]
      const codes = Object.entries(x.closeCodes).map(([k, n]) => `${k}×${n}`).join(', ') || 'none'
      const ups = Object.entries(x.failedUpgrades).map(([k, n]) => `${k.replace('Unexpected server response: ', 'HTTP ')}×${n}`).join(', ') || 'none'
      return [label[WS_VARIANTS[v].drain], x.policies.join(', '), `${x.n}`, `${fmt(x.reloadMs)} (${x.reloadMsPerRun.join(', ')})`, `${fmt(x.lastOldExitMs)} (${x.lastOldExitMsPerRun.join(', ')})`, fmt(x.bootMs), codes, `${x.closes}`, `${x.closedTwiceOrMore}`,
        `${x.reconnected}/${x.closes}`, `${fmt(x.reconnectP50Ms)} / ${fmt(x.reconnectMaxMs)}`, x.lostReplies ? `${x.lostReplies} (${x.lostReplyOlderThanDelay} sent > ${w.replyDelayMs} ms before the close; oldest ${fmt(x.lostReplyMaxAgeMs)} ms)` : '0', x.onNewWorkersAtEnd.map((k) => `${k}/${w.clients}`).join(', '), `${x.connectionsDestroyed}`, ups]
    }), 'llrrrrlrrrrlrrl'))
  out.push('')
  out.push('Times are medians over the runs (each run in brackets). "closed ≥ 2×": clients that reconnected to an old worker not yet replaced and were closed again. ' +
    '"replies lost": messages a client had sent and not had answered when its connection closed; ages are taken at the arrival of the server\'s close frame: one sent less than the reply delay before it ' +
    'may have crossed the close frame (or, with nothing registered, been waiting for its answer), an older one was left unanswered by a server that had read it. "new worker boot": fork → ready of the replacements, median; the slots are replaced one after another.')
  return out.join('\n')
}

export default {
  id: 'realtime',
  title: 'real-time: sticky sessions and WebSocket reloads',
  run,
  print,
  loads: (result) => (result?.runs ?? []).flatMap((r) => [r.keepAlive, r.handoff]),
}
