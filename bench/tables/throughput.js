// Table 1 — throughput: /light and /heavy against a single process, a bare
// node:cluster primary and cluster-run under both scheduling policies.
import { KINDS, freePort, rssMb, start } from '../lib/contenders.js'
import { load } from '../lib/client.js'
import { fmt, fmtRatio, max, median, ratio, table, verdict } from '../lib/stats.js'
import { CONFIG, HEAVY_APP, HEAVY_REPS, REPS, TARGETS, finish, measure, okShedOther, otherLoadLine, progress, rotate, slim } from '../lib/shared.js'

const T1_KINDS = ['single', 'bare', 'cr-rr', 'cr-none']

async function table1 () {
  const runs = []
  for (let rep = 0; rep < REPS; rep++) {
    for (const kind of rotate(T1_KINDS, rep)) {
      const port = await freePort()
      progress(`table 1, repetition ${rep + 1}/${REPS}: ${KINDS[kind].label}`)
      const c = await start(kind, { app: HEAVY_APP, workers: CONFIG.workers, port })
      const run = { rep, ...slim(c) }
      try {
        await load({ port, ...CONFIG.warmup })
        run.light = await measure(c, CONFIG.light)
        run.rssAfterLightMb = rssMb(c.pid)
        progress(`  /light ${fmt(run.light.rps)} req/s, p99 ${fmt(run.light.latency.ok.p99, 1)} ms, failed ${run.light.failed}`)
        if (rep < HEAVY_REPS) {
          // 503s counted apart: table 3 reuses these runs as its unguarded rows
          run.heavy = await measure(c, { ...CONFIG.heavy, classify: okShedOther })
          run.rssAfterHeavyMb = rssMb(c.pid)
          progress(`  /heavy ${fmt(run.heavy.rps, 1)} req/s, p99 ${fmt(run.heavy.latency.ok.p99)} ms, failed ${run.heavy.failed}, ${fmt(run.heavy.windowMs / 1000, 1)} s`)
        }
      } finally {
        run.stop = await finish(c, `table 1 rep ${rep + 1}`)
      }
      runs.push(run)
    }
  }

  const summary = {}
  for (const kind of T1_KINDS) {
    const mine = runs.filter((r) => r.kind === kind)
    const per = (loadName) => {
      const xs = mine.map((r) => r[loadName]).filter(Boolean)
      return {
        n: xs.length,
        ok: median(xs.map((x) => x.ok)),
        failed: median(xs.map((x) => x.failed)),
        failedMax: max(xs.map((x) => x.failed)),
        meanMs: median(xs.map((x) => x.latency.ok.mean)),
        p99Ms: median(xs.map((x) => x.latency.ok.p99)),
        rps: median(xs.map((x) => x.rps)),
        rssMb: max(mine.map((r) => loadName === 'heavy' ? r.rssAfterHeavyMb : r.rssAfterLightMb)),
      }
    }
    summary[kind] = { listenMs: median(mine.map((r) => r.listenMs)), heavy: per('heavy'), light: per('light') }
  }
  for (const kind of T1_KINDS) {
    for (const l of ['heavy', 'light']) {
      summary[kind][l].rpsVsBare = ratio(summary[kind][l].rps, summary.bare[l].rps)
      summary[kind][l].p99VsBare = ratio(summary[kind][l].p99Ms, summary.bare[l].p99Ms)
    }
  }

  const targets = {}
  for (const kind of ['cr-rr', 'cr-none']) {
    const s = summary[kind]
    const listenDelta = s.listenMs !== null && summary.bare.listenMs !== null ? s.listenMs - summary.bare.listenMs : null
    const rss = max([s.heavy.rssMb, s.light.rssMb])
    targets[kind] = {
      heavyRps: { value: s.heavy.rpsVsBare, pass: s.heavy.rpsVsBare === null ? null : s.heavy.rpsVsBare >= TARGETS.throughputRatio },
      heavyP99: { value: s.heavy.p99VsBare, pass: s.heavy.p99VsBare === null ? null : s.heavy.p99VsBare <= TARGETS.p99Ratio },
      lightRps: { value: s.light.rpsVsBare, pass: s.light.rpsVsBare === null ? null : s.light.rpsVsBare >= TARGETS.throughputRatio },
      lightP99: { value: s.light.p99VsBare, pass: s.light.p99VsBare === null ? null : s.light.p99VsBare <= TARGETS.p99Ratio },
      listen: { value: listenDelta, pass: listenDelta === null ? null : listenDelta <= TARGETS.listenDeltaMs },
      rss: { value: rss, pass: rss === null ? null : rss < TARGETS.primaryRssMb },
    }
  }
  return { runs, summary, targets }
}

function printTable1 ({ runs, summary, targets }) {
  const { heavy, light } = CONFIG
  const rows = []
  for (const l of ['heavy', 'light']) {
    for (const kind of T1_KINDS) {
      const s = summary[kind][l]
      if (!s.n) continue
      const failed = s.failedMax > s.failed ? `${fmt(s.failed)} (max ${s.failedMax})` : fmt(s.failed)
      rows.push([
        `/${l}`, KINDS[kind].label, `${s.n}`, fmt(s.ok), failed, fmt(s.meanMs, l === 'heavy' ? 0 : 1), fmt(s.p99Ms, l === 'heavy' ? 0 : 1), fmt(s.rps, l === 'heavy' ? 1 : 0),
        fmt(summary[kind].listenMs), fmt(s.rssMb, 1),
        kind === 'bare' ? '1.00×' : fmtRatio(s.rpsVsBare), kind === 'bare' ? '1.00×' : fmtRatio(s.p99VsBare),
      ])
    }
  }
  const out = []
  out.push(`### Table 1 — throughput (${CONFIG.workers} workers per cluster; median of the runs in column n)`)
  out.push('')
  out.push(`/heavy: ${heavy.amount} requests over ${heavy.connections} keep-alive connections, ${heavy.timeoutS} s per-request timeout. ` +
    `/light: ${light.connections} connections for ${light.durationS} s after a ${CONFIG.warmup.durationS} s warm-up.`)
  out.push('')
  out.push(table(
    ['load', 'contender', 'n', 'ok', 'failed', 'mean ms', 'p99 ms', 'req/s', 'all listening ms', 'primary RSS MB', 'req/s vs bare', 'p99 vs bare'],
    rows, 'llrrrrrrrrrr'))
  out.push('')
  out.push('"failed" = errors + timeouts + non-2xx. "all listening ms": spawn → every worker listening (single process: spawn → port accepts). ' +
    'RSS: VmRSS of the primary (single process: of the app itself) right after the load, max over runs.')
  out.push('')
  const t = (x, f) => x.value === null ? 'n/a' : `${f(x.value)} ${verdict(x.pass)}`
  const ms = (v) => `${v >= 0 ? '+' : ''}${fmt(v)} ms`
  const rowsT = [
    [`/heavy req/s ≥ ${TARGETS.throughputRatio}× bare`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].heavyRps, fmtRatio))],
    [`/heavy p99 ≤ ${TARGETS.p99Ratio}× bare`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].heavyP99, fmtRatio))],
    [`/light req/s ≥ ${TARGETS.throughputRatio}× bare`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].lightRps, fmtRatio))],
    [`/light p99 ≤ ${TARGETS.p99Ratio}× bare`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].lightP99, fmtRatio))],
    [`all listening ≤ bare + ${TARGETS.listenDeltaMs} ms`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].listen, ms))],
    [`primary RSS < ${TARGETS.primaryRssMb} MB`, ...['cr-rr', 'cr-none'].map((k) => t(targets[k].rss, (v) => `${fmt(v, 1)} MB`))],
  ]
  out.push(table(['target', 'cluster-run rr', 'cluster-run none'], rowsT, 'lll'))
  out.push('')
  out.push('The bare primary uses Node\'s default policy (rr on Linux), so "cluster-run none" vs bare also compares scheduling policies. ' +
    otherLoadLine(runs.flatMap((r) => [r.light, r.heavy])))
  return out.join('\n')
}

export default {
  id: '1',
  title: 'throughput',
  run: () => table1(),
  print: printTable1,
  /** The measured loads (warm-ups excluded), for the machine's other-load figure. */
  loads: (result) => (result?.runs ?? []).flatMap((r) => [r.light, r.heavy]),
}
