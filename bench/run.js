// npm run bench — cluster-run against a bare node:cluster primary (and a single
// process), on the Express /heavy + /light app. Prints markdown tables on
// stdout, progress on stderr, and writes every raw figure to bench/results.json.
//
//   BENCH_QUICK=1        smoke run (~1.5 min): 1 repetition, shorter and smaller loads
//   BENCH_REPS=n         repetitions per contender (default 3, quick 1)
//   BENCH_HEAVY_REPS=n   repetitions of the /heavy load in table 1 (default 1, see README)
//   BENCH_ONLY=1,2,3     run only these tables (default 1,2,3,abandoned,logs,footprint,metrics,dashboard,realtime; the control-socket table, ~15 min: BENCH_ONLY=control;
//                        the primary's upgrade, ~6 min, Node 22 and 24 installed in the CI cache: BENCH_ONLY=upgrade;
//                        the scheduling policies, ~15 min, under Node 22.12+ and as root: BENCH_ONLY=scheduling)
//   BENCH_IDLE_MS=n      table 3: let the workers idle n ms between the warm-up and the flood (default 0)
//
// Each table is a module in bench/tables/ whose default export is
// { id, title, run(context), print(result), loads(result) }: run() measures and
// returns what goes into results.json as `table<id>`, print() turns that into
// markdown, loads() lists its measured loads (for the machine's other-load
// figure). context.results holds what the tables before it returned. To add a
// table, write its module and append it to TABLES (BENCH_ONLY selects by id).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { CLI, killEverythingNow, leftovers } from './lib/contenders.js'
import { fmt, median } from './lib/stats.js'
import { CONFIG, HEAVY_REPS, ONLY, QUICK, REPS, RESULTS, TARGETS, meta, note, observations, progress } from './lib/shared.js'
import throughput from './tables/throughput.js'
import reload from './tables/reload.js'
import overload from './tables/overload.js'
import control from './tables/control.js'
import metrics from './tables/metrics.js'
import realtime from './tables/realtime.js'
import abandoned from './tables/abandoned.js'
import logs from './tables/logs.js'
import upgrade from './tables/upgrade.js'
import scheduling from './tables/scheduling.js'
import dashboard from './tables/dashboard.js'

/** The tables, in the order they run and print. */
const TABLES = [throughput, reload, overload, abandoned, logs, control, metrics, dashboard, realtime, upgrade, scheduling, (await import('./tables/footprint.js')).default]

const resultKey = (t) => `table${t.id}`

/** Every measured load of the run (warm-ups excluded). */
function allLoads (results) {
  return TABLES.flatMap((t) => t.loads?.(results[resultKey(t)]) ?? []).filter(Boolean)
}

async function main () {
  if (!fs.existsSync(CLI)) {
    process.stderr.write('dist/bundle/cli.js is missing: run `npm run build` first.\n')
    return 2
  }
  const began = performance.now()
  const results = { meta: meta(), config: CONFIG, targets: TARGETS }
  progress(`cluster-run bench: ${QUICK ? 'quick' : 'full'} mode, ${REPS} repetition(s) (/heavy in table 1: ${HEAVY_REPS}), node ${process.version}, ${os.availableParallelism()} cores`)
  const printed = []
  try {
    for (const t of TABLES) {
      if (!ONLY.has(t.id)) continue
      results[resultKey(t)] = await t.run({ results })
      printed.push(t.print(results[resultKey(t)]))
    }
  } finally {
    const builtAt = fs.statSync(CLI).mtime.toISOString()
    if (builtAt !== results.meta.cliBuiltAt) {
      note('dist/ was rebuilt while the benchmark ran: later contenders ran newer code', { before: results.meta.cliBuiltAt, after: builtAt })
    }
    killEverythingNow()
    const left = leftovers()
    results.leftoverProcesses = left
    if (left.length) note('processes still alive at the end (killed by PID)', left)
    results.observations = observations
    results.totalSeconds = Math.round((performance.now() - began) / 100) / 10
    fs.writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n')
  }
  const header = [`## cluster-run benchmark — ${QUICK ? 'quick' : 'full'} mode, node ${process.version}, ${os.availableParallelism()} cores (${results.meta.cpuModel}), ${results.totalSeconds} s`]
  const others = median(allLoads(results).map((l) => l.cpu?.otherPct))
  results.otherCpuMedianPct = others
  if (others !== null && others > 10) {
    header.push('', `> **Warning:** other processes used a median ${fmt(others)} % of all cores during the measured loads. ` +
      'The figures below are what this busy machine gave, not what cluster-run does on an idle one; compare ratios, not absolute values, and prefer a rerun on a quiet machine.')
    fs.writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n')
  }
  process.stdout.write([header.join('\n'), ...printed].join('\n\n') + '\n')
  if (observations.length) {
    process.stdout.write('\n### Observations\n\n' + observations.map((o) => `- ${o.text}`).join('\n') + '\n(evidence in bench/results.json → observations)\n')
  }
  process.stdout.write(`\nRaw results: ${path.relative(process.cwd(), RESULTS)}. Leftover processes: ${results.leftoverProcesses.length ? results.leftoverProcesses.join(', ') : 'none'}.\n`)
  return 0
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killEverythingNow()
    process.exit(130)
  })
}
process.on('exit', () => killEverythingNow())

main().then((code) => { process.exitCode = code }, (err) => {
  process.stderr.write(`bench failed: ${err?.stack ?? err}\n`)
  process.exitCode = 1
})
