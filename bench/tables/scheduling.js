// Table scheduling — who spreads the connections: the primary in turn (rr), the kernel
// from one queue (none), or the kernel from one queue per worker (reuseport), for
// cluster-run and a bare node:cluster primary, with 2 and 4 workers, on the hello-world
// app. Per arm: new-connection throughput (each request on a connection of its own,
// `Connection: close`), keep-alive throughput, the primary's CPU per new connection, and
// the busiest worker's share of the new connections (each answer names its pid); the
// CPU time per keep-alive request at a fixed rate (the primary's and the workers'
// together: what a policy costs a request once its connection is open, which the
// closed-loop throughput shows only through noise); and how a few long-lived
// connections spread (as from a proxy that keeps a pool open): one per worker, and four
// per worker, opened one after another, in repeated trials. Then
// the churn drill (fixtures/churn-drill.mjs) in a network namespace of its own, with
// net.ipv4.tcp_migrate_req at 0 and at 1: new connections at a fixed rate through 5
// rolling reloads, and through scale-downs, for each policy of cluster-run. Needs Node
// 22.12+ (reuseport) and root (unshare --net): `BENCH_ONLY=scheduling`.
import { execFile } from 'node:child_process'
import net from 'node:net'
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
  // a quarter or less of what 2 cores answer in the closed loop: every arm keeps up
  paced: { connections: 50, rate: 8000, durationS: QUICK ? 3 : 6 },
}
// long-lived connections per worker, and trials of each
const POOLS = { perWorker: [1, 4], trials: QUICK ? 5 : 20 }
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
    const pids = [c.pid, ...c.workerPids]
    const t0 = pids.reduce((sum, pid) => sum + (cpuTicks(pid) ?? 0), 0)
    run.paced = await measure(c, LOADS.paced)
    const t1 = pids.reduce((sum, pid) => sum + (cpuTicks(pid) ?? 0), 0)
    run.paced.usPerRequest = run.paced.ok ? ((t1 - t0) * 1e6 / CLK_TCK) / run.paced.ok : null
    run.pools = {}
    for (const per of POOLS.perWorker) run.pools[per] = await pools(c.port, workers, per * workers, POOLS.trials)
    progress(`  keep-alive at ${LOADS.paced.rate}/s: ${fmt(run.paced.usPerRequest, 1)} µs CPU / request (achieved ${fmt(run.paced.achievedRate)}/s); ` +
      POOLS.perWorker.map((per) => `${per * workers} connections: busiest ${fmt(100 * median(run.pools[per].busiestShares), 1)} %, even in ${run.pools[per].even}/${POOLS.trials}`).join('; '))
    progress(`  new connections ${fmt(run.fresh.rps)} req/s (failed ${run.fresh.failed}), primary ${fmt(run.fresh.primaryUsPerConn)} µs/conn, busiest ${fmt(100 * (run.fresh.busiestShare ?? 0))} %; keep-alive ${fmt(run.keepAlive.rps)} req/s`)
  } finally {
    run.stop = await finish(c, `scheduling ${kind} ${workers} round ${rep + 1}`)
  }
  return run
}

/** One request on a new keep-alive connection, left open: resolves with the connection and the pid that answered. */
function openAndAsk (port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let got = ''
    socket.setEncoding('latin1')
    socket.on('error', reject)
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'))
    socket.on('data', (chunk) => {
      got += chunk
      const pid = /\r\n\r\nhello (\d+)\n/.exec(got)?.[1]
      if (pid) { socket.removeAllListeners('data'); resolve({ socket, pid }) }
    })
  })
}

/**
 * Opens `count` keep-alive connections one after another, each asked once and held, as a
 * proxy's pool would; counts who answered each, then closes them. Per trial: the busiest
 * worker's share of the connections, and whether every worker got exactly count/workers.
 */
async function pools (port, workers, count, trials) {
  const busiestShares = []
  let even = 0
  for (let trial = 0; trial < trials; trial++) {
    const held = []
    try {
      for (let i = 0; i < count; i++) held.push(await openAndAsk(port))
    } finally {
      for (const { socket } of held) socket.destroy()
    }
    const byPid = {}
    for (const { pid } of held) byPid[pid] = (byPid[pid] ?? 0) + 1
    const counts = Object.values(byPid)
    busiestShares.push(Math.max(...counts) / count)
    if (counts.length === workers && counts.every((n) => n === count / workers)) even++
  }
  return { count, busiestShares, even }
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
        pacedUsPerRequest: median(mine.map((r) => r.paced.usPerRequest)),
        pacedPerRun: mine.map((r) => r.paced.usPerRequest),
        pacedBehind: mine.some((r) => r.paced.achievedRate < 0.97 * LOADS.paced.rate),
        pools: Object.fromEntries(POOLS.perWorker.map((per) => {
          const all = mine.flatMap((r) => r.pools[per].busiestShares)
          return [per, { busiestShare: median(all), worstShare: Math.max(...all), even: mine.reduce((n, r) => n + r.pools[per].even, 0), trials: all.length }]
        })),
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
        pacedCpuVsRr: median(runs.filter((r) => r.kind === kind && r.workers === workers).map((r) => {
          const b = runs.find((x) => x.kind === 'cr-rr' && x.workers === workers && x.rep === r.rep)
          return ratio(r.paced.usPerRequest, b?.paced.usPerRequest)
        })),
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
  return { loads: LOADS, pools: POOLS, drill: DRILL, runs, summary, ratios, drills }
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
  out.push(`Once the connections are open: the CPU time of the primary and the workers together per keep-alive request, at ${r.loads.paced.rate} req/s over ${r.loads.paced.connections} connections for ${r.loads.paced.durationS} s ` +
    '(median of the rounds; "vs rr": the median of each round\'s ratio to cluster-run rr). ' +
    `Long-lived connections: ${r.pools.perWorker.map((per) => `${per} per worker`).join(' and ')}, opened one after another and held (a proxy's pool), ${r.pools.trials} trials per run; ` +
    '"busiest": the median over all trials of the busiest worker\'s share of them (worst trial in brackets), "even": the trials where every worker got the same number.')
  out.push('')
  const poolRows = []
  for (const workers of WORKER_COUNTS) {
    for (const kind of ARMS) {
      const x = r.summary[`${kind}/${workers}`]
      const v = r.ratios[`${kind}/${workers}`]
      poolRows.push([KINDS[kind].label, `${workers}`, `${fmt(x.pacedUsPerRequest, 1)}${x.pacedBehind ? ' (fell behind)' : ''}`, fmtRatio(v.pacedCpuVsRr),
        ...r.pools.perWorker.flatMap((per) => {
          const p = x.pools[per]
          return [`${fmt(100 * p.busiestShare, 1)} % (${fmt(100 * p.worstShare, 1)} %)`, `${p.even}/${p.trials}`]
        })])
    }
  }
  out.push(table(['arm', 'workers', 'CPU µs / keep-alive request', 'vs rr', ...r.pools.perWorker.flatMap((per) => [`${per} conn/worker: busiest`, 'even'])], poolRows, 'lrrr' + 'rr'.repeat(r.pools.perWorker.length)))
  out.push('')
  out.push(otherLoadLine(r.runs.flatMap((x) => [x.fresh, x.keepAlive, x.paced])))
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
  loads: (result) => (result?.runs ?? []).flatMap((r) => [r.fresh, r.keepAlive, r.paced]),
}
