// How busy the machine was with other work during a load: the machine's busy
// time (/proc/stat) minus the CPU time of the bench itself, the contender's
// primary (with its reaped workers) and its live workers. The benchmark shares
// its cores with whatever else runs, so every run records this.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'

function machine () {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields
  const busy = user + nice + system + irq + softirq + steal
  return { busy, total: busy + idle + iowait }
}

/** utime + stime (+ cutime + cstime: children it reaped) of a PID, in clock ticks; 0 if gone. */
function ticks (pid, withChildren) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
    // after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return f[11] + f[12] + (withChildren ? f[13] + f[14] : 0)
  } catch {
    return 0
  }
}

function ours (primaryPid, workerPids) {
  let sum = ticks(process.pid, false) + ticks(primaryPid, true)
  for (const pid of workerPids) sum += ticks(pid, false)
  return sum
}

/** Call at the start of a load; the returned function, at its end, gives the shares in % of all cores. */
export function watchCpu (contender) {
  const m0 = machine()
  const o0 = ours(contender.pid, contender.workerPids)
  return () => {
    const m1 = machine()
    const o1 = ours(contender.pid, contender.workerPids)
    const total = m1.total - m0.total
    if (total <= 0) return { busyPct: null, oursPct: null, otherPct: null }
    const busy = m1.busy - m0.busy
    const mine = o1 - o0
    const pct = (x) => Math.round((1000 * x) / total) / 10
    return { busyPct: pct(busy), oursPct: pct(mine), otherPct: pct(Math.max(0, busy - mine)) }
  }
}

/** Clock ticks per second, what /proc/<pid>/stat counts CPU time in. */
export let CLK_TCK = 100
try { CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch {}

/** utime + stime of a PID in clock ticks (its own, not its reaped children's); null if it is gone. */
export function cpuTicks (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
    return f[11] + f[12]
  } catch {
    return null
  }
}
