// Table "logs" — what capturing the workers' output costs. An app (bench/apps/log-app.js,
// pino to stdout, 2 workers) writes one line of about 200 bytes per request:
//   1. req/s under a closed-loop keep-alive load, and the primary's CPU per line, for the
//      bare node:cluster primary (the workers write to its stdout: here, the bench's
//      pipe), cluster-run with the output inherited (the same), cluster-run capturing
//      it (every line read, attributed and written by the primary) and PM2 7
//      (pm2-runtime, which reads them too), in alternating order;
//   2. cluster-run's primary RSS before and after a million lines (bursts of 10,000), and
//      after a second million, in fresh primaries (3, median);
//   3. with worker 0 writing 20,000 lines a second by itself, the /quiet req/s with and
//      without a `cluster-run logs -f` follower attached, alternating.
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLI, KINDS, appPath, freePort, rssMb, start, track } from '../lib/contenders.js'
import { load } from '../lib/client.js'
import { CLK_TCK, cpuTicks } from '../lib/cpu.js'
import { fmt, fmtRatio, median, ratio, table } from '../lib/stats.js'
import { CONFIG, QUICK, REPS, finish, measure, otherLoadLine, progress, rotate, slim } from '../lib/shared.js'

const APP = appPath('log-app.js')
const KINDS_RUN = ['bare', 'cr-inherit', 'cr-rr', 'pm2']
const PER_REQUEST = { path: '/', connections: 50, durationS: QUICK ? 2 : 5 }
const MILLION = QUICK ? 100_000 : 1_000_000
const BURST = 10_000
const FOLLOWED = { rate: 20_000, path: '/quiet', connections: 50, durationS: QUICK ? 2 : 5, pairs: QUICK ? 1 : 3 }
const TARGET = { captureRatio: 0.95, rssGrowthMb: 2, followerRatio: 0.95 }

/** cluster-run's own label here: the capturing one is the default. */
const label = (kind) => (kind === 'cr-rr' ? 'cluster-run, output captured' : KINDS[kind].label)

/** Lets the output of a contender settle: the primary's CPU stops moving. */
async function settled (pid) {
  let last = cpuTicks(pid)
  for (let i = 0; i < 100; i++) {
    await sleep(200)
    const now = cpuTicks(pid)
    if (now === last) return
    last = now
  }
}

async function perRequest () {
  const runs = []
  for (let rep = 0; rep < REPS; rep++) {
    for (const kind of rotate(KINDS_RUN, rep)) {
      const port = await freePort()
      progress(`table logs, repetition ${rep + 1}/${REPS}: ${label(kind)}, one pino line per request`)
      const c = await start(kind, { app: APP, workers: CONFIG.workers, port })
      const r = { kind, rep, ...slim(c) }
      try {
        await load({ port, ...CONFIG.warmup })
        await settled(c.pid)
        const before = cpuTicks(c.pid)
        r.load = await measure(c, PER_REQUEST)
        await settled(c.pid)
        r.primaryCpuUsPerLine = ((cpuTicks(c.pid) - before) / CLK_TCK) * 1e6 / r.load.answered
        progress(`  ${fmt(r.load.rps)} req/s, the primary's CPU ${fmt(r.primaryCpuUsPerLine, 2)} µs per line`)
      } finally {
        r.stop = await finish(c, `table logs rep ${rep + 1}`)
      }
      runs.push(r)
    }
  }
  return runs
}

async function million (rep) {
  const port = await freePort()
  progress(`table logs, repetition ${rep + 1}/${REPS}: cluster-run's primary RSS before and after ${MILLION.toLocaleString('en-US')} lines, and after a second million`)
  const c = await start('cr-rr', { app: APP, workers: CONFIG.workers, port })
  try {
    await load({ port, path: `/burst?n=${BURST}`, connections: 2, amount: 10 })
    await settled(c.pid)
    const before = rssMb(c.pid)
    const startedAt = performance.now()
    await load({ port, path: `/burst?n=${BURST}`, connections: 2, amount: MILLION / BURST, timeoutS: 120 })
    await settled(c.pid)
    const seconds = (performance.now() - startedAt) / 1000
    const after = rssMb(c.pid)
    // a second million: what the first added is a working size if this one adds nothing
    await load({ port, path: `/burst?n=${BURST}`, connections: 2, amount: MILLION / BURST, timeoutS: 120 })
    await settled(c.pid)
    const afterSecond = rssMb(c.pid)
    progress(`  RSS ${fmt(before, 1)} → ${fmt(after, 1)} → ${fmt(afterSecond, 1)} MB (${fmt(MILLION / seconds)} lines/s)`)
    return { before, after, afterSecond, linesPerS: MILLION / seconds, stop: await finish(c, 'table logs, a million lines') }
  } catch (err) {
    await finish(c, 'table logs, a million lines')
    throw err
  }
}

async function followed () {
  const port = await freePort()
  progress(`table logs: /quiet req/s while worker 0 writes ${FOLLOWED.rate.toLocaleString('en-US')} lines a second, with and without a follower`)
  const c = await start('cr-rr', { app: APP, workers: CONFIG.workers, port, env: { LOG_RATE: String(FOLLOWED.rate) } })
  const socket = c.events.find((e) => e.event === 'primary.start').controlSocket
  const pairs = []
  try {
    await load({ port, ...CONFIG.warmup, path: FOLLOWED.path })
    for (let i = 0; i < FOLLOWED.pairs; i++) {
      const pair = {}
      for (const withFollower of i % 2 === 0 ? [false, true] : [true, false]) {
        let follower
        if (withFollower) {
          follower = spawn(process.execPath, [CLI, 'logs', '-f', '-n', '0', '--json', '--socket', socket], { stdio: ['ignore', 'ignore', 'inherit'] })
          track(follower.pid, CLI)
          await sleep(500)
        }
        const result = await measure(c, { path: FOLLOWED.path, connections: FOLLOWED.connections, durationS: FOLLOWED.durationS })
        if (follower) {
          follower.kill('SIGINT')
          await new Promise((resolve) => follower.once('exit', resolve))
        }
        pair[withFollower ? 'with' : 'without'] = result
      }
      progress(`  without ${fmt(pair.without.rps)} req/s, with ${fmt(pair.with.rps)} req/s`)
      pairs.push(pair)
    }
  } finally {
    pairs.stop = await finish(c, 'table logs, a follower')
  }
  return pairs
}

async function run () {
  const runs = await perRequest()
  const summary = Object.fromEntries(KINDS_RUN.map((kind) => {
    const mine = runs.filter((r) => r.kind === kind)
    return [kind, { rps: median(mine.map((r) => r.load.rps)), cpuUs: median(mine.map((r) => r.primaryCpuUsPerLine)) }]
  }))
  // a fresh primary each time: RSS moves by a few hundred KB between runs of the same code
  const samples = []
  for (let rep = 0; rep < REPS; rep++) samples.push(await million(rep))
  const rss = { samples, growth: median(samples.map((r) => r.after - r.before)), secondGrowth: median(samples.map((r) => r.afterSecond - r.after)) }
  const follower = await followed()
  return { runs, summary, rss, follower, followerRatio: median(follower.map((p) => ratio(p.with.rps, p.without.rps))) }
}

function print ({ runs, summary, rss, follower, followerRatio }) {
  const inherit = summary['cr-inherit'].rps
  const capture = summary['cr-rr'].rps
  const rows = KINDS_RUN.map((kind) => [label(kind), fmt(summary[kind].rps), fmtRatio(ratio(summary[kind].rps, inherit)), fmt(summary[kind].cpuUs, 2)])
  const pass = (ok) => (ok ? 'PASS' : 'MISS')
  return [
    `### Table logs — capturing the workers' output (bench/apps/log-app.js: one ~200-byte pino line per request, 2 workers, ${PER_REQUEST.connections} keep-alive connections for ${PER_REQUEST.durationS} s; median of ${REPS})`,
    '',
    table(['contender', 'req/s', 'vs inherited', 'the primary\'s CPU per line, µs'], rows),
    '',
    `Capture against inherit: ${fmtRatio(ratio(capture, inherit))} (target ≥ ${TARGET.captureRatio}: ${pass(ratio(capture, inherit) >= TARGET.captureRatio)}); against PM2: ${fmtRatio(ratio(capture, summary.pm2.rps))} (target ≥ 1: ${pass(capture >= summary.pm2.rps)}).`,
    `The primary's RSS before and after ${MILLION.toLocaleString('en-US')} lines, and after a second million, in ${rss.samples.length} fresh primaries: ${rss.samples.map((r) => `${fmt(r.before, 1)} → ${fmt(r.after, 1)} → ${fmt(r.afterSecond, 1)} MB`).join(', ')} at ${rss.samples.map((r) => fmt(r.linesPerS)).join(', ')} lines/s. Median growth over the first million ${fmt(rss.growth, 1)} MB (target within ${TARGET.rssGrowthMb} MB: ${pass(rss.growth <= TARGET.rssGrowthMb)}), over the second ${fmt(rss.secondGrowth, 1)} MB.`,
    `With worker 0 writing ${FOLLOWED.rate.toLocaleString('en-US')} lines/s: /quiet at ${follower.map((p) => `${fmt(p.without.rps)} → ${fmt(p.with.rps)}`).join(', ')} req/s without → with a \`cluster-run logs -f\` follower; median ratio ${fmtRatio(followerRatio)} (target ≥ ${TARGET.followerRatio}: ${pass(followerRatio >= TARGET.followerRatio)}).`,
    '',
    otherLoadLine([...runs.map((r) => r.load), ...follower.flatMap((p) => [p.with, p.without])]),
  ].join('\n')
}

export default { id: 'logs', title: 'capturing the workers\' output', run, print, loads: (result) => [...(result?.runs.map((r) => r.load) ?? []), ...(result?.follower.flatMap((p) => [p.with, p.without]) ?? [])] }
