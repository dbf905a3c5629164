// Table scheduling — who spreads the connections: the primary in turn (rr), the kernel
// from one queue (none), or the kernel from one queue per worker (reuseport), for
// cluster-run and a bare node:cluster primary, with 2 and 4 workers, on the hello-world
// app. Per arm: new-connection throughput (each request on a connection of its own,
// `Connection: close`), keep-alive throughput, the primary's CPU per new connection, and
// the busiest worker's share of the new connections (each answer names its pid). Then
// the churn drill (fixtures/churn-drill.mjs) in a network namespace of its own, with
// net.ipv4.tcp_migrate_req at 0 and at 1: new connections at a fixed rate through 5
// rolling reloads, and through scale-downs, for each policy of cluster-run. Needs Node
// 22.12+ (reuseport) and root (unshare --net): `BENCH_ONLY=scheduling`.
import { execFile } from 'node:child_process'
import path from 'node:path'
import { KINDS, ROOT, CLI, appPath, freePort, start, track } from '../lib/contenders.js'
import { CLK_TCK, cpuTicks } from '../lib/cpu.js'
import { fmt, fmtRatio, median, ratio, table } from '../lib/stats.js'
import { QUICK, REPS, finish, measure, note, otherLoadLine, progress, rotate } from '../lib/shared.js'

const APP = appPath('hello.js')
const ARMS = ['bare', 'bare-none', 'bare-reuseport', 'cr-rr', 'cr-none', 'cr-reuseport']
const WORKER_COUNTS = [2, 4]
const LOADS = {
  warmup: { connections: 20, durationS: 1 },
  fresh: { connections: 50, keepAlive: false, durationS: QUICK ? 3 : 8 },
  keepAlive: { connections: 50, durationS: QUICK ? 3 : 6 },
}
const DRILL = {
  policies: ['rr', 'none', 'reuseport', 'sticky'],
  workers: 4,
  rate: 300,
  reloads: 'reload,reload,reload,reload,reload',
  scaleDowns: 'scale:2,scale:4,scale:1,scale:3,scale:4',
}

/** Counts answers by the pid in the body ("hello <pid>"). */
function byPid (counts) {
  return (res) => {
    if (res.status < 200 || res.status >= 300) return 'other'
    const pid = res.body.toString('latin1').slice(6).trim()
    counts[pid] = (counts[pid] ?? 0) + 1
    return 'ok'
  }
}

async function armRun (kind, workers, rep) {
  const port = await freePort()
  progress(`table scheduling, round ${rep + 1}/${REPS}: ${KINDS[kind].label}, ${workers} workers`)
  const c = await start(kind, { app: APP, workers, port })
  const run = { kind, workers, rep, listenMs: c.listenMs }
  try {
    await measure(c, LOADS.warmup)
    const counts = {}
    const before = cpuTicks(c.pid)
    run.fresh = await measure(c, { ...LOADS.fresh, classify: byPid(counts) })
    const after = cpuTicks(c.pid)
    run.fresh.primaryUsPerConn = before === null || after === null || !run.fresh.ok ? null : ((after - before) * 1e6 / CLK_TCK) / run.fresh.ok
    const shares = Object.values(counts)
    run.fresh.byWorker = shares
    run.fresh.busiestShare = shares.length ? Math.max(...shares) / shares.reduce((a, b) => a + b, 0) : null
    run.keepAlive = await measure(c, LOADS.keepAlive)
    progress(`  new connections ${fmt(run.fresh.rps)} req/s (failed ${run.fresh.failed}), primary ${fmt(run.fresh.primaryUsPerConn)} µs/conn, busiest ${fmt(100 * (run.fresh.busiestShare ?? 0))} %; keep-alive ${fmt(run.keepAlive.rps)} req/s`)
  } finally {
    run.stop = await finish(c, `scheduling ${kind} ${workers} round ${rep + 1}`)
  }
  return run
}

/** The churn drill in a network namespace of its own; resolves with its drill.result line. */
function drill (policy, migrate, ops) {
  const script = `ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=${migrate} && exec "$0" "$@"`
  return new Promise((resolve) => {
    const child = execFile('unshare', ['--net', 'sh', '-c', script, process.execPath, path.join(ROOT, 'fixtures', 'churn-drill.mjs'), CLI, APP, policy, String(DRILL.workers), ops, String(DRILL.rate)],
      { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (err, stdout) => {
        const line = stdout.split('\n').find((l) => l.includes('"drill.result"'))
        resolve(line ? JSON.parse(line) : { error: err?.message ?? 'no result' })
      })
    track(child.pid, 'churn-drill')
  })
}

async function run () {
  const runs = []
  for (let rep = 0; rep < REPS; rep++) {
    for (const workers of rep % 2 ? [...WORKER_COUNTS].reverse() : WORKER_COUNTS) {
      for (const kind of rotate(ARMS, rep)) runs.push(await armRun(kind, workers, rep))
    }
  }
  const summary = {}
  for (const workers of WORKER_COUNTS) {
    for (const kind of ARMS) {
      const mine = runs.filter((r) => r.kind === kind && r.workers === workers)
      summary[`${kind}/${workers}`] = {
        n: mine.length,
        freshRps: median(mine.map((r) => r.fresh.rps)),
        freshPerRun: mine.map((r) => Math.round(r.fresh.rps)),
        freshFailed: mine.reduce((s, r) => s + r.fresh.failed, 0),
        keepAliveRps: median(mine.map((r) => r.keepAlive.rps)),
        keepAlivePerRun: mine.map((r) => Math.round(r.keepAlive.rps)),
        primaryUsPerConn: median(mine.map((r) => r.fresh.primaryUsPerConn)),
        busiestShare: median(mine.map((r) => r.fresh.busiestShare)),
      }
    }
  }
  // each round's ratios to cluster-run rr of the same round, then their median: noise between rounds cancels
  const vs = (kind, workers, field, base) => median(runs.filter((r) => r.kind === kind && r.workers === workers).map((r) => {
    const b = runs.find((x) => x.kind === base && x.workers === workers && x.rep === r.rep)
    return ratio(r[field].rps, b?.[field].rps)
  }))
  const ratios = {}
  for (const workers of WORKER_COUNTS) {
    for (const kind of ARMS) {
      ratios[`${kind}/${workers}`] = {
        freshVsRr: vs(kind, workers, 'fresh', 'cr-rr'),
        freshVsNone: vs(kind, workers, 'fresh', 'cr-none'),
        keepAliveVsRr: vs(kind, workers, 'keepAlive', 'cr-rr'),
      }
    }
  }

  const drills = []
  for (const migrate of [0, 1]) {
    for (const policy of DRILL.policies) {
      for (const [what, ops] of [['5 reloads', DRILL.reloads], ['scale-downs', DRILL.scaleDowns]]) {
        progress(`table scheduling, drill: ${policy}, tcp_migrate_req=${migrate}, ${what}`)
        const result = await drill(policy, migrate, ops)
        if (result.error) note(`scheduling drill ${policy} migrate=${migrate} ${what}: ${result.error}`)
        progress(`  sent ${result.sent}, failed ${result.failed} ${JSON.stringify(result.errorKinds ?? {})}`)
        drills.push({ policy, migrate, what, ops, ...result })
      }
    }
  }
  return { loads: LOADS, drill: DRILL, runs, summary, ratios, drills }
}

function print (r) {
  const out = []
  out.push('### Table scheduling — rr, none and reuseport: new connections, keep-alive, the primary\'s CPU, balance, and what reloads and scale-downs drop')
  out.push('')
  out.push(`\`bench/apps/hello.js\` (node:http hello world), a fresh cluster per run, ${REPS} rounds with the order of the arms rotating. ` +
    `New connections: a closed loop of ${r.loads.fresh.connections} lanes, each request on a connection of its own (\`Connection: close\`), ${r.loads.fresh.durationS} s. ` +
    `Keep-alive: ${r.loads.keepAlive.connections} connections, ${r.loads.keepAlive.durationS} s. ` +
    '"vs rr" and "vs none": the median over the rounds of each round\'s ratio to cluster-run rr (none) of the same round. ' +
    '"primary µs / conn": the primary\'s CPU time during the new-connection load ÷ the requests answered. "busiest %": the share of the new connections answered by the busiest worker (even: 50 % of 2, 25 % of 4).')
  out.push('')
  const rows = []
  for (const workers of WORKER_COUNTS) {
    for (const kind of ARMS) {
      const x = r.summary[`${kind}/${workers}`]
      const v = r.ratios[`${kind}/${workers}`]
      rows.push([KINDS[kind].label, `${workers}`, `${x.n}`, `${fmt(x.freshRps)} (${x.freshPerRun.join(', ')})`, fmtRatio(v.freshVsRr), fmtRatio(v.freshVsNone), `${x.freshFailed}`,
        fmt(x.primaryUsPerConn), fmt(100 * (x.busiestShare ?? 0), 1), `${fmt(x.keepAliveRps)} (${x.keepAlivePerRun.join(', ')})`, fmtRatio(v.keepAliveVsRr)])
    }
  }
  out.push(table(['arm', 'workers', 'n', 'new conn req/s (per run)', 'vs rr', 'vs none', 'failed', 'primary µs / conn', 'busiest %', 'keep-alive req/s (per run)', 'vs rr'], rows, 'lrrlrrrrrlr'))
  out.push('')
  out.push(otherLoadLine(r.runs.flatMap((x) => [x.fresh, x.keepAlive])))
  out.push('')
  out.push(`Churn drill (\`fixtures/churn-drill.mjs\`, run in a network namespace of its own where net.ipv4.tcp_migrate_req is set): cluster-run, ${r.drill.workers} workers, ` +
    `new connections at ${r.drill.rate}/s (open loop, each request on a connection of its own, no retry) through "${r.drill.reloads}" and through "${r.drill.scaleDowns}", each operation waited for until the cluster settled.`)
  out.push('')
  out.push(table(['policy', 'tcp_migrate_req', 'operations', 'requests', 'failed', 'errors'],
    r.drills.map((d) => [d.policy, `${d.migrate}`, d.what, `${d.sent ?? '–'}`, `${d.failed ?? '–'}`, d.error ?? (Object.entries(d.errorKinds ?? {}).map(([k, n]) => `${k}×${n}`).join(', ') || 'none')]), 'lrlrrl'))
  return out.join('\n')
}

export default {
  id: 'scheduling',
  title: 'scheduling policies: rr, none, reuseport',
  run,
  print,
  loads: (result) => (result?.runs ?? []).flatMap((r) => [r.fresh, r.keepAlive]),
}
