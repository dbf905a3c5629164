// Table 2 — rolling restart under load: cluster-run's SIGHUP reload against the
// bare primary's restart by hand, under a closed-loop keep-alive load that honours
// `Connection: close` and never retries (bench/lib/client.js): a request it loses is
// a request the server really dropped.
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { KINDS, freePort, start } from '../lib/contenders.js'
import { load } from '../lib/client.js'
import { fmt, max, median, table } from '../lib/stats.js'
import { CONFIG, HEAVY_APP, REPS, finish, measure, note, otherLoadLine, progress, rotate, slim, strip } from '../lib/shared.js'

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
  { id: 'bare', kind: 'bare' },
  { id: 'cr-rr', kind: 'cr-rr' },
]

async function table2 () {
  const runs = []
  const cfg = CONFIG.reload
  for (let rep = 0; rep < REPS; rep++) {
    for (const row of rotate(T2_ROWS, rep)) {
      const { kind } = row
      const port = await freePort()
      progress(`table 2, repetition ${rep + 1}/${REPS}: ${KINDS[kind].label}, ${cfg.workers} workers`)
      const c = await start(kind, { app: HEAVY_APP, workers: cfg.workers, port })
      const run = { row: row.id, rep, ...slim(c) }
      try {
        await load({ port, ...CONFIG.warmup })
        run.load = await measure(c, {
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
        progress(`  ok ${run.load.ok}, failed ${run.load.failed} ${JSON.stringify(run.load.errorKinds)}, p99 ${fmt(run.load.latency.ok.p99, 1)} ms, restart ${fmt(r.ms)} ms (${r.event})`)
        if (kind === 'cr-rr') {
          const what = `cluster-run reload under load (rep ${rep + 1})`
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
      p99Ms: median(mine.map((r) => r.load.latency.ok.p99)),
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
    return [KINDS[row.kind].label, how[row.kind], `${s.n}`, fmt(s.ok), failed, fmt(s.p99Ms, 1), fmt(s.reloadMs), detail]
  }).filter(Boolean)
  return [
    `### Table 2 — rolling restart under load (${cfg.workers} workers on ${os.availableParallelism()} cores; median of the runs in column n)`,
    '',
    `/light, ${cfg.connections} keep-alive connections for ${cfg.durationS} s (closed loop, ${cfg.timeoutS} s per-request timeout; ` +
      'a connection is not reused after a response with `Connection: close`, and nothing is retried); ' +
      `the restart starts ${cfg.triggerAfterMs / 1000} s in.`,
    '',
    table(['contender', 'restart', 'n', 'ok', 'failed', 'p99 ms', 'restart ms', 'errors, all runs'], rows, 'llrrrrrl'),
    '',
    '"failed" = errors (resets, timeouts) + non-2xx seen by the client during the whole run. ' +
      otherLoadLine(runs.map((r) => r.load)),
  ].join('\n')
}

export default {
  id: '2',
  title: 'rolling restart under load',
  run: () => table2(),
  print: printTable2,
  loads: (result) => (result?.runs ?? []).map((r) => r.load),
}
