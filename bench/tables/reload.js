// Table 2 — rolling restart under load: cluster-run's SIGHUP reload against the
// bare primary's restart by hand, measured with autocannon and a node:http client.
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { KINDS, freePort, start } from '../lib/contenders.js'
import { load } from '../lib/load.js'
import { fmt, max, median, table } from '../lib/stats.js'
import { CONFIG, HEAVY_APP, REPS, finish, measure, note, otherLoadLine, progress, rotate, slim, strip } from '../lib/shared.js'

const HTTP_CLIENT_REPS = 1

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

export default {
  id: '2',
  title: 'rolling restart under load',
  run: () => table2(),
  print: printTable2,
  loads: (result) => (result?.runs ?? []).map((r) => r.load),
}
