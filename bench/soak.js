// npm run soak — cluster-run under steady keep-alive load and a seeded chaos loop,
// watching the primary for leaks. Not part of `npm test`.
//
// `node dist/bundle/cli.js bench/apps/soak-app.js -w 4 --config <tmp>/soak.config.json`
// (a 2 s hang check, request and memory recycling, a crash breaker that deliberate
// kills do not trip) gets a paced keep-alive load for the whole run.
// After a settle period and a first quarter of the chaos (which grows the primary's
// heap to its working size once), the primary's RSS and open fds are sampled; then, at
// random intervals (0.5-3 s), the chaos loop SIGKILLs a worker, pauses one (SIGSTOP, SIGCONT
// after a pause shorter or longer than the hang check), reloads (SIGHUP), scales up
// or down (SIGTTIN/SIGTTOU, between 2 and 6 workers) or makes a worker grow past
// maxMemoryMb: a deck of these (DECK), shuffled anew each round, from a seeded PRNG. Then the chaos stops, the cluster goes back to 4 workers, the load
// settles, and the primary is sampled again. Markdown summary on stdout, progress
// on stderr.
//
//   SOAK_SECONDS=n       length of the run (default 300)
//   SOAK_SEED=n          seed of the chaos loop (default: random, printed)
//   SOAK_RATE=n          target requests per second of the load (default 1500)
//   SOAK_CONNECTIONS=n   keep-alive connections of the load (default 32)
//   SOAK_JSON=file       also write the raw figures there
//
// Exit code: 0 when the primary's RSS grew at most 10 % and its fd count did not
// grow between the two sampling points; 1 when either did; 2 when the soak could
// not run to the end (the primary exited, no samples).
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startLoad as clientLoad } from './lib/client.js'
import { CLI, appPath, freePort, isOurs, killEverythingNow, leftovers, start } from './lib/contenders.js'
import { fmt, median, summarize, table } from './lib/stats.js'

function positiveInt (s) {
  const n = Number(s)
  return Number.isInteger(n) && n > 0 ? n : undefined
}

const SECONDS = positiveInt(process.env.SOAK_SECONDS) ?? 300
const SEED = positiveInt(process.env.SOAK_SEED) ?? (Math.floor(Math.random() * 2 ** 31) + 1)
const RATE = positiveInt(process.env.SOAK_RATE) ?? 1500
const CONNECTIONS = positiveInt(process.env.SOAK_CONNECTIONS) ?? 32
const JSON_OUT = process.env.SOAK_JSON || null

const APP = appPath('soak-app.js')
const WORKERS = 4
const MIN_WORKERS = 2
const MAX_WORKERS = 6
const TIMEOUT_S = 10 // per request, from the moment it was sent
const GROW_MB = 128
/** A failed request is put down to the last chaos action at most this long before it. */
const ATTRIBUTION_MS = TIMEOUT_S * 1000

const CLUSTER_CONFIG = {
  heartbeatTimeoutMs: 2000,
  shutdownTimeoutMs: 5000,
  // a worker of soak-app.js uses ~50 MB; one /grow call takes it over
  maxMemoryMb: 160,
  // about one recycle per worker every 40-65 s at the target rate on 4 workers
  maxRequests: RATE * 10,
  maxRequestsJitter: RATE * 6,
  // deliberate kills must neither wait long for their restart nor trip the breaker
  // (a breaker that a crash loop can still trip with this backoff: no config.warning)
  restartBackoff: { initialMs: 20, maxMs: 50 },
  maxCrashRate: { crashes: 1000, windowMs: 60_000 },
}

const PHASES = (() => {
  const settleS = Math.min(20, SECONDS / 6)
  const calmS = Math.max(15, SECONDS / 15)
  const chaosEndS = Math.max(settleS, SECONDS - calmS)
  // a first round of chaos brings the primary's heap to its working size (forks,
  // reloads and their config threads grow it once); the first sample follows it
  const warmEndS = settleS + (chaosEndS - settleS) / 4
  return { settleS, warmEndS, chaosEndS }
})()

// pauses: SIGCONT before the hang check can fire (beats every 500 ms, timeout 2 s),
// or well after it should have
const SHORT_PAUSE_MS = [200, 1200]
const LONG_PAUSE_MS = [3000, 5000]
const CHAOS_GAP_MS = [500, 3000]
// One deck of actions, dealt in a fresh random order each round: every kind
// comes up in every round, in these proportions.
const DECK = [
  ...Array(3).fill('kill'),
  ...Array(2).fill('pause-short'),
  ...Array(2).fill('pause-long'),
  ...Array(2).fill('reload'),
  'scale-up',
  'scale-down',
  'grow',
]

const t0 = performance.now()
const secs = (at) => (at - t0) / 1000
const progress = (line) => process.stderr.write(`[${fmt(secs(performance.now()), 1).padStart(6)} s] ${line}\n`)
const notes = []
const note = (text) => { notes.push(text); progress(`! ${text}`) }

/** mulberry32: a small seeded PRNG, [0, 1). */
function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = prng(SEED)
const between = ([lo, hi]) => lo + random() * (hi - lo)
const pick = (xs) => xs[Math.floor(random() * xs.length)]
function shuffled (xs) {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

// ── the cluster as its events show it ────────────────────────────────────────

/** Worker states and the wished number of workers, from the primary's stdout events. */
class ClusterView {
  constructor (c) {
    this.c = c
    this.next = 0
    this.workers = new Map() // pid -> 'starting' | 'ready' | 'draining'
    this.target = null
    this.lastChangeAt = performance.now()
    this.lastScaleTo = null
    this.scaleContradicted = []
  }

  sync () {
    const events = this.c.events
    for (; this.next < events.length; this.next++) {
      const e = events[this.next]
      switch (e.event) {
        case 'primary.start': this.target = e.workers; break
        case 'scale': this.target = e.to; this.lastScaleTo = e.to; break
        case 'reload.start':
          // the workers the reload runs with; a scale during its config read wins over the file
          if (this.lastScaleTo !== null && e.workers !== this.lastScaleTo) this.scaleContradicted.push({ lastScaleTo: this.lastScaleTo, reloadWorkers: e.workers, atS: secs(e.at) })
          this.target = e.workers
          this.lastScaleTo = null
          break
        case 'worker.fork': this.workers.set(e.pid, 'starting'); break
        case 'worker.ready': if (this.workers.has(e.pid)) this.workers.set(e.pid, 'ready'); break
        case 'worker.drain': if (this.workers.has(e.pid)) this.workers.set(e.pid, 'draining'); break
        case 'worker.exit': this.workers.delete(e.pid); break
        default: continue
      }
      this.lastChangeAt = e.at
    }
  }

  ready () {
    this.sync()
    return [...this.workers].filter(([, s]) => s === 'ready').map(([pid]) => pid)
  }

  /** Every worker ready, as many as wished, nothing changed for a second. */
  steady () {
    this.sync()
    const states = [...this.workers.values()]
    return this.target !== null && states.length === this.target && states.every((s) => s === 'ready') &&
      performance.now() - this.lastChangeAt >= 1000
  }

  count (name) {
    return this.c.events.filter((e) => e.event === name).length
  }
}

// ── the primary's RSS and fds ────────────────────────────────────────────────

function readPrimary (pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssKb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1])
  const kinds = {}
  let fds = 0
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target
    try { target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { continue } // closed meanwhile
    fds++
    const kind = /^(socket|pipe):/.exec(target)?.[1] ?? (target.startsWith('anon_inode:') ? target.slice(11) : target.startsWith('/dev/') ? target : 'file')
    kinds[kind] = (kinds[kind] ?? 0) + 1
  }
  return { at: performance.now(), rssMb: rssKb / 1024, fds, kinds }
}

/** `n` samples a second apart, each taken while the cluster is steady (up to 30 s of waiting). */
async function samplePrimary (c, view, label, n = 5) {
  const samples = []
  const deadline = performance.now() + 30_000
  while (samples.length < n && performance.now() < deadline && !c.exit) {
    if (!view.steady()) { await sleep(100); continue }
    let s
    try { s = readPrimary(c.pid) } catch { break } // the primary is gone
    if (view.steady()) {
      samples.push({ ...s, steady: true })
      await sleep(1000)
    }
  }
  while (samples.length < n && !c.exit) {
    try { samples.push({ ...readPrimary(c.pid), steady: false }) } catch { break }
    await sleep(1000)
  }
  if (samples.some((s) => !s.steady)) note(`${label} sample: the cluster was not steady for ${samples.filter((s) => !s.steady).length} of ${n} samples`)
  const rssMb = median(samples.map((s) => s.rssMb))
  const fds = median(samples.map((s) => s.fds))
  const typical = samples.find((s) => s.fds === fds) ?? samples[0]
  const result = { label, atS: samples.length ? secs(samples[0].at) : null, rssMb, fds, kinds: typical?.kinds ?? {}, samples: samples.map((s) => ({ ...s, atS: secs(s.at), at: undefined })) }
  progress(`${label}: primary RSS ${fmt(rssMb, 1)} MB, ${fmt(fds)} fds (median of ${samples.length}: ${samples.map((s) => `${fmt(s.rssMb, 1)}/${s.fds}`).join(', ')})`)
  return result
}

// ── the load ─────────────────────────────────────────────────────────────────

/**
 * `connections` keep-alive connections paced to `rate` in all (bench/lib/client.js);
 * every request ends in exactly one of: 2xx, another status, an error, a timeout.
 * Runs until stop(), at most `maxS` seconds.
 */
function startLoad ({ port, connections, rate, timeoutS, maxS }) {
  const stats = { ok: 0, statuses: {}, failures: [], latencies: [], perSecond: [] }
  const onSettle = ({ class: cls, status, error, startAt, at, response, connection }) => {
    // the worker behind this keep-alive connection, for a later request that fails on it
    if (response) connection.pid = Number(response.header('x-worker-pid')) || null
    if (status !== null) stats.statuses[status] = (stats.statuses[status] ?? 0) + 1
    const second = Math.floor(secs(at))
    stats.perSecond[second] ??= { ok: 0, failed: 0 }
    if (cls === 'ok') {
      stats.ok++
      stats.latencies.push(at - startAt)
      stats.perSecond[second].ok++
    } else {
      stats.failures.push({ at, sentAt: startAt, kind: error ?? `HTTP ${status}`, pid: connection.pid ?? null })
      stats.perSecond[second].failed++
    }
  }
  const load = clientLoad({ port, path: '/', connections, rate, timeoutS, durationS: maxS, onSettle })
  return { stats, stop: () => load.stop().then((r) => ({ ...stats, sent: r.sent, unfinished: r.unfinished })) }
}

// ── chaos ────────────────────────────────────────────────────────────────────

/** Signals a worker only while it is still one of ours (not an exited, reused PID). */
function signalWorker (pid, signal) {
  if (!isOurs(pid)) return false
  try { process.kill(pid, signal); return true } catch { return false }
}

function grow (port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/grow?mb=${GROW_MB}`, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d) => { body += d }).on('end', () => {
        try { resolve(JSON.parse(body).pid) } catch { resolve(null) }
      }).on('error', () => resolve(null))
    })
    req.setTimeout(5000, () => req.destroy())
    req.on('error', () => resolve(null))
  })
}

async function chaosLoop (c, view, until) {
  const actions = []
  const paused = new Map() // pid -> the SIGCONT still due
  let deck = []
  while (performance.now() < until && !c.exit) {
    await sleep(between(CHAOS_GAP_MS))
    if (performance.now() >= until || c.exit) break
    if (!deck.length) deck = shuffled(DECK)
    let name = deck.pop()
    view.sync()
    if (name === 'scale-up' && view.target >= MAX_WORKERS) name = 'scale-down'
    else if (name === 'scale-down' && view.target <= MIN_WORKERS) name = 'scale-up'
    const action = { name, at: performance.now() }
    const victims = view.ready().filter((pid) => !paused.has(pid))
    switch (name) {
      case 'kill':
      case 'pause-short':
      case 'pause-long': {
        if (!victims.length) { action.skipped = 'no ready worker'; break }
        action.pid = pick(victims)
        if (name === 'kill') {
          action.sent = signalWorker(action.pid, 'SIGKILL')
          break
        }
        action.pauseMs = Math.round(between(name === 'pause-short' ? SHORT_PAUSE_MS : LONG_PAUSE_MS))
        action.sent = signalWorker(action.pid, 'SIGSTOP')
        if (action.sent) {
          const pid = action.pid
          paused.set(pid, sleep(action.pauseMs).then(() => {
            paused.delete(pid)
            action.contAt = performance.now()
            action.continued = signalWorker(pid, 'SIGCONT')
          }))
        }
        break
      }
      case 'reload':
        c.child.kill('SIGHUP')
        break
      case 'scale-up':
      case 'scale-down': {
        const from = c.events.length
        action.fromWorkers = view.target
        c.child.kill(name === 'scale-up' ? 'SIGTTIN' : 'SIGTTOU')
        try {
          const e = await c.waitFor((x) => x.event === 'scale', { from, timeoutMs: 3000, what: 'scale' })
          action.toWorkers = e.to
        } catch (err) {
          action.toWorkers = null
          note(`${name}: ${err.message}`)
        }
        break
      }
      case 'grow':
        action.pid = await grow(c.port)
        break
    }
    actions.push(action)
    progress(`chaos ${name}${action.pid ? ` pid ${action.pid}` : ''}${action.pauseMs ? ` for ${action.pauseMs} ms` : ''}${action.toWorkers !== undefined ? ` ${action.fromWorkers} → ${action.toWorkers}` : ''}${action.skipped ? ` skipped (${action.skipped})` : ''}`)
  }
  // nothing stays stopped: the pauses still running end as planned (5 s at most)
  await Promise.all(paused.values())
  return actions
}

/** Back to WORKERS workers, every one ready and nothing changing. */
async function restore (c, view) {
  const deadline = performance.now() + 60_000
  while (performance.now() < deadline && !c.exit) {
    view.sync()
    if (view.target !== null && view.target !== WORKERS) {
      const from = c.events.length
      c.child.kill(view.target < WORKERS ? 'SIGTTIN' : 'SIGTTOU')
      await c.waitFor((x) => x.event === 'scale' || x.event === 'reload.start', { from, timeoutMs: 3000, what: 'scale' }).catch(() => {})
      continue
    }
    if (view.steady()) return true
    await sleep(100)
  }
  note(`the cluster did not settle at ${WORKERS} ready workers within 60 s after the chaos (target ${view.target}, workers ${JSON.stringify(Object.fromEntries(view.workers))})`)
  return false
}

// ── what happened ────────────────────────────────────────────────────────────

function countBy (xs, key) {
  const out = {}
  for (const x of xs) { const k = key(x); out[k] = (out[k] ?? 0) + 1 }
  return out
}

/** How each pause ended, from the paused worker's events. */
function pauseOutcome (a, events) {
  if (!a.sent) return 'not sent'
  const mine = events.filter((e) => e.pid === a.pid && e.at >= a.at)
  const first = mine.find((e) => ['worker.hung', 'worker.drain', 'worker.exit'].includes(e.event))
  const contAt = a.contAt ?? Infinity
  if (first && first.at <= contAt + 250) {
    if (first.event === 'worker.hung') return 'killed as hung'
    if (first.event === 'worker.drain') return `drained while paused (${first.reason})`
    return 'exited while paused'
  }
  return 'resumed'
}

/**
 * What became of the worker that held the failed request's connection (known when
 * an earlier response on that socket named it), with the chaos action aimed at it.
 */
function fate (failure, actions, events) {
  const { pid } = failure
  if (!pid) return 'unknown (no earlier response on that connection)'
  const aimed = actions.filter((a) => a.pid === pid && a.at <= failure.at && a.name !== 'grow').map((a) => a.name)
  const exit = events.find((e) => e.event === 'worker.exit' && e.pid === pid)
  const drain = events.find((e) => e.event === 'worker.drain' && e.pid === pid)
  const what = exit ? `exited: ${exit.reason}` : drain ? `draining: ${drain.reason}` : 'still serving at the end'
  return aimed.length ? `${[...new Set(aimed)].join(' + ')}, ${what}` : what
}

function attribute (failure, actions, events) {
  let last = null
  for (const a of actions) if (a.at <= failure.at && failure.at - a.at <= ATTRIBUTION_MS && !a.skipped) last = a
  if (last) return last.name
  const recycle = events.findLast((e) => e.event === 'worker.recycle' && e.at <= failure.at && failure.at - e.at <= ATTRIBUTION_MS)
  if (recycle) return `recycle (${recycle.reason}), no chaos action`
  return 'none of these'
}

function phaseOf (at, marks) {
  if (at < marks.chaosStart) return 'settle + first sample'
  if (at < marks.chaosEnd) return 'chaos'
  return 'calm + last sample'
}

// ── main ─────────────────────────────────────────────────────────────────────

async function main () {
  if (!fs.existsSync(CLI)) {
    process.stderr.write('dist/bundle/cli.js is missing: run `npm run build` first.\n')
    return 2
  }
  const cliBuiltAt = fs.statSync(CLI).mtimeMs
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-run-soak-'))
  const configFile = path.join(dir, 'soak.config.json')
  fs.writeFileSync(configFile, JSON.stringify(CLUSTER_CONFIG, null, 2) + '\n')
  progress(`cluster-run soak: ${SECONDS} s, seed ${SEED}, ${RATE} req/s over ${CONNECTIONS} keep-alive connections, node ${process.version}, ${os.availableParallelism()} cores`)
  progress(`phases: settle 0-${fmt(PHASES.settleS)} s, warm-up chaos until ${fmt(PHASES.warmEndS)} s, back to ${WORKERS} workers, first sample, chaos until ${fmt(PHASES.chaosEndS)} s, then back to ${WORKERS} workers, calm, last sample`)

  const port = await freePort()
  let c
  const report = { seed: SEED, seconds: SECONDS, rate: RATE, connections: CONNECTIONS, config: CLUSTER_CONFIG, phases: PHASES }
  let load
  try {
    c = await start('cr-rr', { app: APP, workers: WORKERS, port, args: ['--config', configFile] })
    progress(`primary pid ${c.pid}, ${WORKERS} workers ready in ${fmt(c.listenMs)} ms`)
    const view = new ClusterView(c)
    const loadStartedAt = performance.now()
    const at = (s) => loadStartedAt + s * 1000
    load = startLoad({ port, connections: CONNECTIONS, rate: RATE, timeoutS: TIMEOUT_S, maxS: SECONDS + 120 })

    const ticker = setInterval(() => {
      const s = load.stats
      view.sync()
      progress(`${s.ok} ok, ${s.failures.length} failed; workers: ${view.ready().length} ready of ${view.target} wished, ${view.workers.size} alive`)
    }, 10_000)
    ticker.unref()

    await sleep(Math.max(0, at(PHASES.settleS) - performance.now()))
    const marks = { loadStartedAt, chaosStart: performance.now(), chaosEnd: null }
    if (at(PHASES.chaosEndS) <= marks.chaosStart) note('the run is too short for any chaos: set SOAK_SECONDS higher')
    progress(`warm-up chaos starts (seed ${SEED})`)
    const warmup = await chaosLoop(c, view, at(PHASES.warmEndS))
    report.warmupRestored = await restore(c, view)
    await sleep(5000) // the load settles
    report.first = await samplePrimary(c, view, 'first')
    progress('chaos goes on')
    const actions = [...warmup, ...await chaosLoop(c, view, at(PHASES.chaosEndS))]
    marks.chaosEnd = performance.now()
    progress(`chaos over: ${actions.length} actions; back to ${WORKERS} workers`)
    report.restored = await restore(c, view)
    await sleep(5000) // the load settles
    report.last = await samplePrimary(c, view, 'last')
    const stats = await load.stop()
    marks.loadEnd = performance.now()
    clearInterval(ticker)

    // let the primary's events of the last moments arrive, then stop it
    await sleep(200)
    report.primaryAliveToTheEnd = !c.exit
    const stoppedAt = performance.now()
    const exit = await c.stop()
    report.stop = {
      code: exit?.code ?? null,
      signal: exit?.signal ?? null,
      ms: exit ? Math.round(exit.at - stoppedAt) : null,
      forcedKill: Boolean(c.forcedKill),
      shutdownComplete: c.events.find((e) => e.event === 'shutdown.complete') ?? null,
      leftoverWorkers: c.leftoverWorkers ?? [],
    }
    view.sync()
    report.scaleContradicted = view.scaleContradicted
    Object.assign(report, summarizeRun({ c, stats, actions, marks }))
  } finally {
    load?.stop()
    if (c && !c.exit) await c.stop()
    const left = leftovers()
    report.leftovers = left
    if (left.length) note(`processes still alive at the end (killed by PID): ${left.join(', ')}`)
    killEverythingNow()
    fs.rmSync(dir, { recursive: true, force: true })
    if (c && fs.statSync(CLI).mtimeMs !== cliBuiltAt) note('dist/ was rebuilt while the soak ran: workers forked after that ran newer code')
  }

  const verdict = judge(report)
  report.verdict = verdict
  report.notes = notes
  if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify(report, null, 2) + '\n')
  process.stdout.write(printReport(report, c) + '\n')
  return verdict.code
}

function summarizeRun ({ c, stats, actions, marks }) {
  const events = c.events
  const failures = stats.failures.map((f) => ({ ...f, cause: attribute(f, actions, events), fate: fate(f, actions, events), phase: phaseOf(f.at, marks) }))
  const windowS = (marks.loadEnd - marks.loadStartedAt) / 1000
  const pauses = actions.filter((a) => a.name.startsWith('pause') && !a.skipped)
  for (const a of pauses) a.outcome = pauseOutcome(a, events)
  const pausedPids = new Set(pauses.map((a) => a.pid))
  const exits = events.filter((e) => e.event === 'worker.exit')
  const byEvent = (name) => events.filter((e) => e.event === name)
  return {
    requests: {
      total: stats.sent,
      ok: stats.ok,
      failed: failures.length,
      windowS,
      okPerSecond: stats.ok / windowS,
      latencyOkMs: summarize(stats.latencies),
      statuses: stats.statuses,
      failedByKind: countBy(failures, (f) => f.kind),
      failedByCause: countBy(failures, (f) => f.cause),
      failedByPhase: countBy(failures, (f) => f.phase),
      failedByCauseAndKind: countBy(failures, (f) => `${f.cause}\t${f.kind}`),
      failedByFate: countBy(failures, (f) => `${f.fate}\t${f.kind}`),
      failures: failures.map((f) => ({ atS: secs(f.at), sentAtS: secs(f.sentAt), kind: f.kind, pid: f.pid, fate: f.fate, cause: f.cause })),
    },
    chaos: {
      actions: actions.map((a) => ({ ...a, atS: secs(a.at), contAtS: a.contAt ? secs(a.contAt) : undefined, at: undefined, contAt: undefined })),
      byName: countBy(actions.filter((a) => !a.skipped), (a) => a.name),
      skipped: actions.filter((a) => a.skipped).length,
      pauseOutcomes: countBy(pauses, (a) => `${a.name}\t${a.outcome}`),
      growPids: actions.filter((a) => a.name === 'grow').map((a) => a.pid),
    },
    events: {
      forks: byEvent('worker.fork').length,
      exitsByReason: countBy(exits, (e) => `${e.reason}\t${e.expected ? 'expected' : 'unexpected'}`),
      restarts: byEvent('worker.restart').length,
      recyclesByReason: countBy(byEvent('worker.recycle'), (e) => e.reason),
      hung: byEvent('worker.hung').length,
      hungWithoutPause: byEvent('worker.hung').filter((e) => !pausedPids.has(e.pid)).map((e) => e.pid),
      killedAtDrainDeadline: byEvent('worker.killed').length,
      reloads: Object.fromEntries(['reload.start', 'reload.complete', 'reload.aborted', 'reload.queued', 'reload.ignored'].map((n) => [n, byEvent(n).length])),
      reloadsAborted: byEvent('reload.aborted').map((e) => ({ reason: e.reason, atS: secs(e.at) })),
      scales: byEvent('scale').length,
      configWarnings: byEvent('config.warning').map((e) => e.message),
      fatal: events.filter((e) => ['crash-rate.exceeded', 'boot.failed', 'hook.error'].includes(e.event)).map((e) => e.event),
    },
    stderrTail: c.stderr.trim().split('\n').filter(Boolean).slice(-10),
  }
}

function judge (r) {
  const lines = []
  let code = 0
  if (!r.first || !r.last || r.first.rssMb === null || r.last.rssMb === null) {
    return { code: 2, lines: ['the soak did not reach both sampling points'] }
  }
  if (!r.primaryAliveToTheEnd) {
    code = 2
    lines.push('the primary exited before the end of the soak')
  }
  const rssGrowth = (r.last.rssMb - r.first.rssMb) / r.first.rssMb
  const fdGrowth = r.last.fds - r.first.fds
  r.growth = { rssPct: 100 * rssGrowth, fds: fdGrowth }
  const rssOk = rssGrowth <= 0.10
  const fdOk = fdGrowth <= 0
  lines.push(`primary RSS ${fmt(r.first.rssMb, 1)} → ${fmt(r.last.rssMb, 1)} MB (${rssGrowth >= 0 ? '+' : ''}${fmt(100 * rssGrowth, 1)} %, limit +10 %): ${rssOk ? 'PASS' : 'FAIL'}`)
  lines.push(`primary open fds ${fmt(r.first.fds)} → ${fmt(r.last.fds)} (${fdGrowth >= 0 ? '+' : ''}${fmt(fdGrowth)}, limit +0): ${fdOk ? 'PASS' : 'FAIL'}`)
  if (code === 0 && (!rssOk || !fdOk)) code = 1
  return { code, lines }
}

function printReport (r, c) {
  const out = []
  const tsv = (obj) => Object.entries(obj).sort((a, b) => b[1] - a[1]).map(([k, v]) => [...k.split('\t'), String(v)])
  out.push(`## cluster-run soak — ${SECONDS} s, seed ${SEED}, node ${process.version}, ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? '?'})`)
  out.push('')
  out.push(`\`node dist/bundle/cli.js bench/apps/soak-app.js -w ${WORKERS} --config soak.config.json\` (primary pid ${c?.pid ?? '–'}), config: \`${JSON.stringify(CLUSTER_CONFIG)}\`. ` +
    `Load: bench/lib/client.js, ${CONNECTIONS} keep-alive connections paced to ${RATE} req/s in all, ${TIMEOUT_S} s timeout, for the whole run. ` +
    `Chaos every ${CHAOS_GAP_MS[0] / 1000}–${CHAOS_GAP_MS[1] / 1000} s from ${fmt(PHASES.settleS)} s until ${fmt(PHASES.chaosEndS)} s (the first sample after its first quarter, ${fmt(PHASES.warmEndS)} s): ` +
    `SIGKILL a worker, pause one ${SHORT_PAUSE_MS.join('–')} ms or ${LONG_PAUSE_MS.join('–')} ms (SIGSTOP/SIGCONT; hang check 2 s), SIGHUP, SIGTTIN/SIGTTOU (${MIN_WORKERS}–${MAX_WORKERS} workers), ` +
    `GET /grow?mb=${GROW_MB} (past maxMemoryMb). Rerun the same chaos with \`SOAK_SEED=${SEED}\`.`)
  if (!r.requests) {
    out.push('', '**The soak did not finish:**', '', ...notes.map((n) => `- ${n}`))
    return out.join('\n')
  }
  const q = r.requests
  out.push('', '### Requests', '')
  out.push(table(['total', 'ok (2xx)', 'failed', 'ok req/s', 'p50 ms', 'p99 ms', 'max ms'],
    [[q.total, q.ok, q.failed, fmt(q.okPerSecond), fmt(q.latencyOkMs.p50, 1), fmt(q.latencyOkMs.p99, 1), fmt(q.latencyOkMs.max)]], 'rrrrrrr'))
  out.push('', 'Failed requests by cause (error code, `timeout`, or `HTTP <status>`); then by what became of the worker that held ' +
    'the connection (the chaos action aimed at it, and its worker.exit reason), and by the last chaos action at most ' +
    `${ATTRIBUTION_MS / 1000} s before the failure:`, '')
  out.push(q.failed ? table(['cause', 'failed'], tsv(q.failedByKind), 'lr') : 'none')
  if (q.failed) {
    out.push('')
    out.push(table(['the worker holding the connection', 'cause', 'failed'], tsv(q.failedByFate), 'llr'))
    out.push('')
    out.push(table(['last chaos action before it', 'cause', 'failed'], tsv(q.failedByCauseAndKind), 'llr'))
    out.push('', `By phase: ${Object.entries(q.failedByPhase).map(([k, v]) => `${k} ${v}`).join(', ')}.`)
  }

  const ch = r.chaos
  out.push('', '### Chaos', '')
  out.push(table(['action', 'count'], tsv(ch.byName), 'lr') + (ch.skipped ? `\n\n${ch.skipped} actions skipped (no ready worker to pick).` : ''))
  if (Object.keys(ch.pauseOutcomes).length) {
    out.push('', 'How the pauses ended (a short pause should resume, a long one be killed as hung unless the worker was drained first):', '')
    out.push(table(['pause', 'outcome', 'count'], tsv(ch.pauseOutcomes), 'llr'))
  }

  const ev = r.events
  out.push('', '### Cluster events', '')
  out.push(table(['worker.exit reason', '', 'count'], tsv(ev.exitsByReason), 'llr'))
  out.push('')
  const rel = ev.reloads
  out.push(table(['event', 'count'], [
    ['worker.fork', ev.forks],
    ['worker.restart', ev.restarts],
    ...Object.entries(ev.recyclesByReason).map(([k, v]) => [`worker.recycle (${k})`, v]),
    ['worker.hung', ev.hung],
    ['worker.killed (drain deadline)', ev.killedAtDrainDeadline],
    ['reload.start', rel['reload.start']],
    ['reload.complete', rel['reload.complete']],
    ['reload.aborted', rel['reload.aborted']],
    ['reload.queued / ignored', `${rel['reload.queued']} / ${rel['reload.ignored']}`],
    ['scale', ev.scales],
  ], 'lr'))
  if (ev.hungWithoutPause.length) out.push('', `Killed as hung without a pause of ours: ${ev.hungWithoutPause.join(', ')}.`)
  if (ev.reloadsAborted.length) out.push('', `Reloads aborted: ${ev.reloadsAborted.map((a) => `${fmt(a.atS, 1)} s: ${a.reason}`).join('; ')}.`)
  if (ev.fatal.length) out.push('', `Fatal events: ${ev.fatal.join(', ')}.`)
  if (ev.configWarnings.length) out.push('', `config.warning: ${ev.configWarnings.join('; ')}.`)
  if (r.scaleContradicted?.length) {
    out.push('', `A scale during a reload's config read: the last \`scale\` event said ${r.scaleContradicted.map((x) => `${x.lastScaleTo}, the reload.start ${x.reloadWorkers} workers (${fmt(x.atS, 1)} s)`).join('; ')}.`)
  }

  out.push('', '### Primary', '')
  const kinds = (k) => Object.entries(k).sort((a, b) => b[1] - a[1]).map(([n, v]) => `${n} ${v}`).join(', ')
  out.push(table(['point', 'at s', 'RSS MB (median of 5)', 'RSS samples', 'fds (median)', 'fd samples', 'fds by kind'], [r.first, r.last].map((p) => [
    p.label, p.samples.length ? `${fmt(p.samples[0].atS, 1)}–${fmt(p.samples[p.samples.length - 1].atS, 1)}` : '–', fmt(p.rssMb, 1), p.samples.map((s) => fmt(s.rssMb, 1)).join(' '), fmt(p.fds), p.samples.map((s) => s.fds).join(' '), kinds(p.kinds),
  ]), 'lrrlrll'))
  const st = r.stop
  out.push('', `SIGTERM at the end: exit code ${st.code ?? '–'}${st.signal ? ` (signal ${st.signal})` : ''} after ${fmt(st.ms)} ms` +
    `${st.forcedKill ? ', **SIGKILLed after 15 s**' : ''}, shutdown.complete ${st.shutdownComplete ? `seen (killed ${st.shutdownComplete.killed})` : '**missing**'}. ` +
    `Leftover processes: ${r.leftovers.length ? r.leftovers.join(', ') + ' (killed by PID)' : 'none'}.`)
  if (r.stderrTail.length) out.push('', 'Last lines on stderr (the primary and its workers):', '', '```', ...r.stderrTail, '```')

  out.push('', '### Verdict', '')
  out.push(...r.verdict.lines.map((l) => `- ${l}`))
  if (notes.length) out.push('', '### Notes', '', ...notes.map((n) => `- ${n}`))
  return out.join('\n')
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killEverythingNow()
    process.exit(130)
  })
}
process.on('exit', () => killEverythingNow())

main().then((code) => { process.exitCode = code }, (err) => {
  process.stderr.write(`soak failed: ${err?.stack ?? err}\n`)
  killEverythingNow()
  process.exitCode = 2
})
