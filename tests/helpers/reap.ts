// Every process a test file starts is killed by pid once the file is done with it,
// however the file ends: the teardowns of a failed test do it, and so does this
// module once all the file's tests have ended (a teardown that threw skips those
// after it), when the process exits with something still running, and when tap
// times the file out (its teardowns may not finish before tap kills the file). A
// pid is killed only while it still names the process that was started (same
// start time): pids are reused.
import cluster from 'node:cluster'
import fs from 'node:fs'
import t from 'tap'

/** pid → the process's start time (field 22 of /proc/<pid>/stat), as first seen. */
const started = new Map<number, string>()

function startTime (pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** Remembers a process this file started (a child, or a worker of a child), to be killed by kill() or at exit. */
export function reapLater (pid: number | undefined): void {
  if (pid === undefined || started.has(pid)) return
  const since = startTime(pid)
  // already gone (and reaped): nothing to kill
  if (since !== undefined) started.set(pid, since)
}

/** Sends `signal` to a process reapLater() saw, if that pid still names it. Returns whether it was sent. */
export function kill (pid: number, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  const since = started.get(pid)
  if (since === undefined || startTime(pid) !== since) {
    started.delete(pid)
    return false
  }
  try {
    process.kill(pid, signal)
    return true
  } catch {
    started.delete(pid)
    return false
  }
}

/** SIGKILLs every process reapLater() saw that is still there. Synchronous: it runs in an 'exit' handler. */
function killAll (): void {
  for (const pid of [...started.keys()]) kill(pid)
}

// the workers of clusters this file runs in-process with run()
cluster.on('fork', (worker) => reapLater(worker.process.pid))
// once every test of the file has ended, even if a teardown failed before its turn
t.teardown(killAll)
process.on('exit', killAll)
// tap times a file out by a message first, then SIGALRM, then SIGKILL a second later
t.on('timeout', killAll)
