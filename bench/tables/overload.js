// Table 3 — overload protection: the /heavy flood against cluster-run, unguarded
// and behind expressGuard with and without the loop-utilization limit, over
// keep-alive connections (a closed loop, table 1's load) and over new connections
// (an open loop: requests sent on schedule, each on a connection of its own).
import { setTimeout as sleep } from 'node:timers/promises'
import { KINDS, freePort, start } from '../lib/contenders.js'
import { load } from '../lib/client.js'
import { fmt, max, median, table, verdict } from '../lib/stats.js'
import { CONFIG, GUARDED_APP, HEAVY_APP, HEAVY_REPS, IDLE_MS, QUICK, REPS, TARGETS, finish, measure, okShedOther, otherLoadLine, progress, rotate, slim } from '../lib/shared.js'

// The open loop: `amount` GETs of /heavy at `rate` per second, each on a new
// connection (`Connection: close`), sent on schedule whatever the answers: 4× what
// 2 workers of 40 ms handlers serve. Kept in results.json as table3.openLoad.
const OPEN_LOAD = { path: '/heavy', amount: QUICK ? 200 : 300, rate: 200, keepAlive: false, timeoutS: 30 }

// `load` is 'keep' (CONFIG.heavy: a closed loop over keep-alive connections) or 'open'
// (OPEN_LOAD). `guard` names an entry of CONFIG.guards; `sheds` marks the rows
// whose runs end in about a second because the guard refuses most of the flood
// (they get all REPS repetitions; the others are as long as an unguarded flood
// and get HEAVY_REPS).
const T3_ROWS = [
  { id: 'rr', kind: 'cr-rr', load: 'keep', guard: null },
  { id: 'rr+guard', kind: 'cr-rr', load: 'keep', guard: 'lag', sheds: true },
  { id: 'rr+elu', kind: 'cr-rr', load: 'keep', guard: 'elu', sheds: true },
  { id: 'none', kind: 'cr-none', load: 'keep', guard: null },
  { id: 'none+guard', kind: 'cr-none', load: 'keep', guard: 'lag', sheds: true },
  { id: 'none+elu', kind: 'cr-none', load: 'keep', guard: 'elu', sheds: true },
  { id: 'rr/open', kind: 'cr-rr', load: 'open', guard: null },
  { id: 'rr+guard/open', kind: 'cr-rr', load: 'open', guard: 'lag', sheds: true },
  { id: 'rr+elu/open', kind: 'cr-rr', load: 'open', guard: 'elu', sheds: true },
  { id: 'none/open', kind: 'cr-none', load: 'open', guard: null },
  { id: 'none+guard/open', kind: 'cr-none', load: 'open', guard: 'lag', sheds: true },
  { id: 'none+elu/open', kind: 'cr-none', load: 'open', guard: 'elu', sheds: true },
]

const LOAD_LABEL = { keep: 'keep-alive', open: 'new conns' }

/** The row's flood against a contender, 503s counted apart, with the machine's CPU use by other processes recorded. */
function flood (c, row) {
  return measure(c, { ...(row.load === 'keep' ? CONFIG.heavy : OPEN_LOAD), classify: okShedOther })
}

/** What a load counted as shed (503), and their latencies. */
const shed = (r) => r.classes.shed ?? 0
const latencyShed = (r) => r.latency.shed ?? { p99: null }

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
  // The unguarded keep-alive rows are table 1's /heavy runs of the same app, cluster and
  // load (which follow the warm-up at once: not comparable with an idle pause).
  for (const row of T3_ROWS.filter((r) => !r.guard && r.load === 'keep' && IDLE_MS === 0)) {
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
      progress(`table 3, repetition ${rep + 1}/${REPS}: ${KINDS[row.kind].label}${row.guard ? ` + ${guardCall(row.guard)}` : ''}, ${LOAD_LABEL[row.load]}`)
      const c = await start(row.kind, {
        app: row.guard ? GUARDED_APP : HEAVY_APP,
        workers: CONFIG.workers,
        port,
        env: row.guard ? guardEnv(row.guard) : {},
      })
      const run = { row: row.id, rep, from: 'table 3', ...slim(c) }
      try {
        // the guard is in front of the warm-up too: what it refuses of /light is the price of its limits
        run.warmup = summarizeWarmup(await load({ port, ...CONFIG.warmup, classify: okShedOther }))
        if (IDLE_MS) await sleep(IDLE_MS)
        run.heavy = await flood(c, row)
        progress(`  accepted ${run.heavy.ok}, shed ${shed(run.heavy)}, errors ${run.heavy.errors}, p99 accepted ${fmt(run.heavy.latency.ok.p99)} ms, p99 shed ${fmt(latencyShed(run.heavy).p99)} ms, ${fmt(run.heavy.windowMs / 1000, 1)} s`)
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
      shed: median(rs.map((r) => shed(r.heavy))),
      other: median(rs.map((r) => r.heavy.classes.other ?? 0)),
      timeouts: median(rs.map((r) => r.heavy.timeouts)),
      timeoutsMax: max(rs.map((r) => r.heavy.timeouts)),
      errors: median(rs.map((r) => r.heavy.errors - r.heavy.timeouts)),
      acceptedP99Ms: median(rs.map((r) => r.heavy.latency.ok.p99)),
      acceptedP99MaxMs: max(rs.map((r) => r.heavy.latency.ok.p99)),
      shedP99Ms: median(rs.map((r) => latencyShed(r.heavy).p99)),
      shedP99MaxMs: max(rs.map((r) => latencyShed(r.heavy).p99)),
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
  return { openLoad: OPEN_LOAD, runs, summary }
}

function summarizeWarmup (r) {
  return { ok: r.ok, shed: shed(r), failed: r.failed, p99OkMs: r.latency.ok.p99 }
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

/** "all targets met" or "missed: …" over some rows: the worst verdict of each target. */
function verdictLine (rows, summary) {
  const ran = rows.filter((row) => summary[row.id].n > 0)
  if (ran.length === 0) return null
  const missed = []
  for (const [target, label] of [['acceptedP99', 'accepted p99'], ['shedP99', 'shed p99'], ['noTimeouts', 'no timeouts']]) {
    const rowsMissing = ran.filter((row) => summary[row.id].targets[target] === false)
    if (rowsMissing.length) missed.push(`${label} (${rowsMissing.map(rowLabel).join(', ')})`)
  }
  return missed.length ? `missed: ${missed.join('; ')}` : 'all targets met'
}

function rowLabel (row) {
  return `${KINDS[row.kind].label.replace('cluster-run ', '')} ${LOAD_LABEL[row.load]}`
}

function printTable3 ({ runs, summary }) {
  const { heavy } = CONFIG
  const rows = T3_ROWS.map((row) => {
    const s = summary[row.id]
    const shedCol = s.shedP99Ms === null ? (s.n ? 'no 503' : 'n/a') : p99Cell(s.shedP99Ms, s.shedP99MaxMs, s.targets.shedP99)
    return [
      KINDS[row.kind].label.replace('cluster-run ', ''), LOAD_LABEL[row.load],
      row.guard ? GUARD_LABEL[row.guard] : 'none' + (s.from === 'table 1' ? ' (table 1 runs)' : ''),
      `${s.n}`, fmt(s.accepted), fmt(s.shed), `${fmt(s.timeouts)} / ${fmt(s.errors)}${s.timeoutsMax > s.timeouts ? ` (max ${s.timeoutsMax} timeouts)` : ''}`,
      p99Cell(s.acceptedP99Ms, s.acceptedP99MaxMs, s.targets.acceptedP99), shedCol, verdict(s.targets.noTimeouts), fmt(s.wallS, 1),
      row.guard ? reasonsCell(s.overloadStarts) : '',
    ]
  })
  const verdicts = ['lag', 'elu']
    .map((guard) => [guard, verdictLine(T3_ROWS.filter((row) => row.guard === guard), summary)])
    .filter(([, line]) => line !== null)
    .map(([guard, line]) => `${GUARD_LABEL[guard]}, both policies and both loads: ${line}.`)
  return [
    `### Table 3 — overload protection (cluster-run, ${CONFIG.workers} workers; median of the runs in column n)`,
    '',
    `/heavy floods, sent ${IDLE_MS ? `after the workers idled ${IDLE_MS} ms following` : 'as soon as'} the /light warm-up ends: ` +
      `"keep-alive" = ${heavy.amount} requests over ${heavy.connections} keep-alive connections (closed loop, ${heavy.timeoutS} s per-request timeout; ` +
      'Retry-After is ignored: every 503 is followed at once by the next request on that connection); ' +
      `"new conns" = an open loop of ${OPEN_LOAD.amount} requests at ${OPEN_LOAD.rate}/s, each on a new connection ` +
      `(${OPEN_LOAD.timeoutS} s timeout; latency counted from the moment a request was due). ` +
      `Guards: "${GUARD_LABEL.lag}" = \`${guardCall('lag')}\`; "${GUARD_LABEL.elu}" = \`${guardCall('elu')}\`. ` +
      'Latencies measured at the client, split by status. ' +
      `Targets: accepted p99 < ${TARGETS.acceptedP99Ms} ms, shed p99 < ${TARGETS.shedP99Ms} ms, no timeouts.`,
    '',
    table(['policy', 'load', 'guard', 'n', 'accepted (2xx)', 'shed (503)', 'timeouts / errors', 'p99 accepted ms', 'p99 shed ms', 'no timeout', 'wall s', 'overload.start (warm-up + flood, all runs)'],
      rows, 'lllrrrrrrlrl'),
    '',
    [...verdicts, otherLoadLine(runs.map((r) => r.heavy))].join(' '),
    '',
    `The price, during the ${CONFIG.warmup.durationS} s /light warm-up before each flood (${CONFIG.warmup.connections} connections, closed loop: ` +
      'the workers are saturated while /light answers in milliseconds), median share of requests refused: ' +
      T3_ROWS.filter((row) => row.guard && summary[row.id].n > 0)
        .map((row) => `${rowLabel(row)} ${GUARD_LABEL[row.guard]} ${fmt(summary[row.id].warmupShedPct)} %`).join(', ') + '.',
  ].join('\n')
}

export default {
  id: '3',
  title: 'overload protection',
  // the unguarded rows reuse table 1's /heavy runs when table 1 ran
  run: ({ results }) => table3(results.table1),
  print: printTable3,
  // its own runs only: the rows taken from table 1 are counted there
  loads: (result) => (result?.runs ?? []).filter((r) => r.from === 'table 3').map((r) => r.heavy),
}
