// Table "abandoned" — work for clients that already left. The seed flood:
// 400 keep-alive clients send 1200 /heavy requests (~40 ms of CPU each) to 2 workers
// and give up on any request unanswered after 5 s, closing its connection (as
// `loadtest -n 1200 -c 400 -k` does with its timeout). Once the last client has given
// up, how long do the workers keep computing, and how much CPU do they burn, for
// nobody? And how many connections does the primary hold in CLOSE-WAIT then?
// cluster-run (rr, none) beside the bare node:cluster primary, in alternating order.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLI, KINDS, freePort, start } from '../lib/contenders.js'
import { load } from '../lib/client.js'
import { CLK_TCK, cpuTicks } from '../lib/cpu.js'
import { fmt, median, table } from '../lib/stats.js'
import { CONFIG, HEAVY_APP, QUICK, REPS, finish, measure, otherLoadLine, progress, rotate, slim } from '../lib/shared.js'

const KINDS_RUN = ['bare', 'cr-rr', 'cr-none']
const FLOOD = { path: '/heavy', connections: QUICK ? 200 : 400, amount: QUICK ? 400 : 1200, timeoutS: 5 }
/** Idle: the workers together used under this share of one core over the last window. */
const IDLE_SHARE = 0.1
const IDLE_WINDOW_MS = 300
const IDLE_WAIT_MS = 90_000
const TARGET_IDLE_S = 2

/** The TCP connections on `port` in CLOSE-WAIT (the peer has closed; a process here still holds them). */
function closeWait (port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  let n = 0
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try { text = fs.readFileSync(file, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length > 3 && f[1].endsWith(`:${hex}`) && f[3] === '08') n++
    }
  }
  return n
}

/** From `since` (performance.now()), samples the workers' CPU until they idle: the seconds that took and the CPU seconds they used meanwhile. */
async function untilIdle (pids, since) {
  const first = pids.reduce((sum, pid) => sum + (cpuTicks(pid) ?? 0), 0)
  const samples = [{ at: performance.now(), ticks: first }]
  while (performance.now() - since < IDLE_WAIT_MS) {
    await sleep(50)
    const at = performance.now()
    const ticks = pids.reduce((sum, pid) => sum + (cpuTicks(pid) ?? 0), 0)
    samples.push({ at, ticks })
    const back = samples.findLast((s) => at - s.at >= IDLE_WINDOW_MS)
    if (!back) continue
    const share = (ticks - back.ticks) / CLK_TCK / ((at - back.at) / 1000)
    if (share < IDLE_SHARE) return { idleAfterS: (back.at - since) / 1000, cpuS: (back.ticks - first) / CLK_TCK }
  }
  return { idleAfterS: null, cpuS: (samples.at(-1).ticks - first) / CLK_TCK }
}

async function run () {
  const runs = []
  for (let rep = 0; rep < REPS; rep++) {
    for (const kind of rotate(KINDS_RUN, rep)) {
      const port = await freePort()
      progress(`table abandoned, repetition ${rep + 1}/${REPS}: ${KINDS[kind].label}, ${CONFIG.workers} workers, ${FLOOD.amount} /heavy over ${FLOOD.connections} keep-alive connections, giving up after ${FLOOD.timeoutS} s`)
      const c = await start(kind, { app: HEAVY_APP, workers: CONFIG.workers, port })
      const r = { kind, rep, ...slim(c) }
      try {
        await load({ port, ...CONFIG.warmup })
        const workers = [...c.workerPids]
        r.flood = await measure(c, FLOOD)
        const gaveUpAt = r.flood.settledAt
        r.closeWait = closeWait(port)
        Object.assign(r, await untilIdle(workers, gaveUpAt))
        r.closeWaitAfter = closeWait(port)
        if (kind !== 'bare') {
          // the heartbeats' count of requests not run (a heartbeat comes every second)
          await sleep(1100)
          const status = JSON.parse(execFileSync(process.execPath, [CLI, 'status', '--json', '--socket', c.events.find((e) => e.event === 'primary.start').controlSocket], { encoding: 'utf8' }))
          r.abandoned = status.members.reduce((sum, m) => sum + (m.abandoned ?? 0), 0)
        }
        progress(`  answered ${r.flood.ok}, gave up ${r.flood.timeouts}, errors ${r.flood.errors - r.flood.timeouts}; CLOSE-WAIT ${r.closeWait}; idle ${fmt(r.idleAfterS, 1)} s after the last client gave up, ${fmt(r.cpuS, 1)} CPU s for nobody`)
      } finally {
        r.stop = await finish(c, `table abandoned rep ${rep + 1}`)
      }
      runs.push(r)
    }
  }
  const summary = Object.fromEntries(KINDS_RUN.map((kind) => {
    const mine = runs.filter((r) => r.kind === kind)
    return [kind, {
      n: mine.length,
      idleAfterS: median(mine.map((r) => r.idleAfterS)),
      idleAfterSAll: mine.map((r) => r.idleAfterS),
      cpuS: median(mine.map((r) => r.cpuS)),
      closeWait: median(mine.map((r) => r.closeWait)),
      answered: median(mine.map((r) => r.flood.ok)),
      gaveUp: median(mine.map((r) => r.flood.timeouts)),
      p50Ms: median(mine.map((r) => r.flood.latency.ok.p50)),
      p99Ms: median(mine.map((r) => r.flood.latency.ok.p99)),
      abandoned: median(mine.map((r) => r.abandoned)),
    }]
  }))
  return { flood: FLOOD, runs, summary }
}

function print ({ flood, runs, summary }) {
  const rows = KINDS_RUN.map((kind) => {
    const s = summary[kind]
    const verdict = kind === 'bare' ? '' : s.idleAfterS !== null && s.idleAfterS < TARGET_IDLE_S ? 'PASS' : 'MISS'
    return [KINDS[kind].label, `${fmt(s.idleAfterS, 1)} s (${s.idleAfterSAll.map((x) => fmt(x, 1)).join(', ')})`, fmt(s.cpuS, 1), fmt(s.closeWait), fmt(s.answered), fmt(s.gaveUp), kind === 'bare' ? '—' : fmt(s.abandoned), `${fmt(s.p50Ms)} / ${fmt(s.p99Ms)}`, verdict]
  })
  return [
    `### Table abandoned — work for clients that left (${flood.amount} /heavy over ${flood.connections} keep-alive connections, ${CONFIG.workers} workers, clients give up after ${flood.timeoutS} s; median of ${REPS})`,
    '',
    table(['contender', 'workers idle after the last client gave up', 'worker CPU s after it', 'CLOSE-WAIT then', 'answered', 'given up', 'abandoned (not run)', 'answered p50 / p99 ms', `< ${TARGET_IDLE_S} s`], rows),
    '',
    otherLoadLine(runs.map((r) => r.flood)),
  ].join('\n')
}

export default { id: 'abandoned', title: 'work for clients that left', run, print, loads: (result) => result?.runs.map((r) => r.flood) ?? [] }
