// Starting, watching and stopping the processes under test. Every process the
// benchmark starts (and every worker those report) is remembered by PID and
// killed by PID on the way out, whatever happens.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
// the CLI as it ships (package.json `bin`): the bundle `npm run build` writes
export const CLI = path.join(ROOT, 'dist', 'bundle', 'cli.js')
const BARE = fileURLToPath(new URL('../bare-primary.js', import.meta.url))
const THRONG = fileURLToPath(new URL('../throng-primary.js', import.meta.url))
const PM2_RUNTIME = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2-runtime')
export const appPath = (name) => fileURLToPath(new URL(`../apps/${name}`, import.meta.url))
/** A config that only sets log.workerOutput: 'inherit' (the entry and the count come from the command line). */
const INHERIT_CONFIG = fileURLToPath(new URL('../inherit-output.json', import.meta.url))

export const KINDS = {
  single: {
    label: 'single process',
    argv: ({ app }) => [app],
  },
  bare: {
    label: 'bare node:cluster',
    argv: ({ app }) => [BARE, app],
    env: ({ workers }) => ({ BARE_WORKERS: String(workers) }),
  },
  // references for the footprint table: the primary's memory and start of other managers
  throng: {
    label: 'throng 5',
    argv: ({ app }) => [THRONG, app],
    env: ({ workers }) => ({ BARE_WORKERS: String(workers) }),
  },
  pm2: {
    label: 'PM2 7 (pm2-runtime)',
    argv: ({ app, workers }) => [PM2_RUNTIME, 'start', app, '-i', String(workers)],
    // its state and logs in a directory of its own, never the user's ~/.pm2
    env: () => ({ PM2_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'cr-bench-pm2-')) }),
  },
  'cr-rr': {
    label: 'cluster-run rr',
    argv: ({ app, workers }) => [CLI, app, '-w', String(workers), '--scheduling-policy', 'rr'],
  },
  // the workers write to the primary's stdout themselves, as before log capture
  'cr-inherit': {
    label: 'cluster-run, output inherited',
    argv: ({ app, workers }) => [CLI, app, '-w', String(workers), '--config', INHERIT_CONFIG],
  },
  'cr-none': {
    label: 'cluster-run none',
    argv: ({ app, workers }) => [CLI, app, '-w', String(workers), '--scheduling-policy', 'none'],
  },
  'cr-reuseport': {
    label: 'cluster-run reuseport',
    argv: ({ app, workers }) => [CLI, app, '-w', String(workers), '--scheduling-policy', 'reuseport'],
  },
  'bare-none': {
    label: 'bare node:cluster, none',
    argv: ({ app }) => [BARE, app],
    env: ({ workers }) => ({ BARE_WORKERS: String(workers), NODE_CLUSTER_SCHED_POLICY: 'none' }),
  },
  // the app's own listen({ reusePort: true }) (Node 22.12+), which Node's cluster serves
  'bare-reuseport': {
    label: 'bare node:cluster, app listens with reusePort',
    argv: ({ app }) => [BARE, app],
    env: ({ workers }) => ({ BARE_WORKERS: String(workers), REUSE_PORT: '1' }),
  },
}

/** Contenders not stopped yet, for the emergency cleanup. */
const live = new Set()
/** Every PID this run started or was told about, to check for leftovers at the end. */
const everyPid = new Map() // pid -> what it should be running (a path in its cmdline)

export async function freePort () {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

/** The environment without any CLUSTER_RUN_* setting of the caller's shell. */
function cleanEnv (extra) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CLUSTER_RUN_')) env[k] = v
  return { ...env, ...extra }
}

/**
 * Starts a contender and resolves once all its workers listen. The result has
 * `listenMs` (spawn → all listening, as the bench sees it), the parsed JSON
 * events of its stdout (each with `at`, performance.now() of arrival), and stop().
 * `args` are appended to the contender's command line (e.g. `--config <file>`).
 */
export async function start (kind, { app, workers, port, env = {}, args = [] }) {
  const spec = KINDS[kind]
  const argv = [...spec.argv({ app, workers }), ...args]
  const own = spec.env?.({ workers }) ?? {}
  const spawnedAt = performance.now()
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: cleanEnv({ ...env, PORT: String(port), ...own }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const c = {
    kind,
    label: spec.label,
    child,
    pid: child.pid,
    port,
    app,
    workers,
    spawnedAt,
    events: [],
    stderr: '',
    workerPids: new Set(),
    exit: null,
    // a directory made for this start (PM2's home), removed when it stops
    tempDir: own.PM2_HOME ?? null,
  }
  everyPid.set(child.pid, argv[0])
  live.add(c)

  const waiters = new Set()
  const wake = () => { for (const w of waiters) w() }
  let pending = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    const at = performance.now()
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop()
    for (const line of lines) {
      // the apps' own lines (the log table writes millions) are not events: not parsed
      if (!line.startsWith('{') || !line.includes('"event":"')) continue
      let parsed
      try { parsed = JSON.parse(line) } catch { continue }
      if (typeof parsed.event !== 'string') continue
      parsed.at = at
      c.events.push(parsed)
      if ((parsed.event === 'worker.fork' || parsed.event === 'fork') && typeof parsed.pid === 'number') {
        c.workerPids.add(parsed.pid)
        everyPid.set(parsed.pid, app)
      }
    }
    wake()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    c.stderr = (c.stderr + chunk).slice(-8192)
  })
  c.exited = once(child, 'exit').then(([code, signal]) => {
    c.exit = { code, signal, at: performance.now() }
    wake()
    return c.exit
  })

  /** Resolves with the first event from index `from` on that matches; rejects on timeout or exit. */
  c.waitFor = (match, { from = 0, timeoutMs = 30_000, what = 'event' } = {}) => new Promise((resolve, reject) => {
    const check = () => {
      for (let i = from; i < c.events.length; i++) {
        if (match(c.events[i], i)) { done(); return resolve(c.events[i]) }
      }
      if (c.exit) { done(); reject(new Error(`${c.label} exited (${c.exit.code ?? c.exit.signal}) while waiting for ${what}; stderr: ${c.stderr.trim().slice(-500)}`)) }
    }
    const timer = setTimeout(() => { done(); reject(new Error(`${c.label}: no ${what} within ${timeoutMs} ms`)) }, timeoutMs)
    const done = () => { clearTimeout(timer); waiters.delete(check) }
    waiters.add(check)
    check()
  })

  c.stop = () => stop(c)

  try {
    let readyAt
    if (kind === 'single' || kind === 'pm2') {
      readyAt = await waitForPort(c, port, 30_000)
      // PM2 does not say which workers it forked: its children, to stop them for sure
      if (kind === 'pm2') for (const [pid, cmdline] of childPids(child.pid)) { c.workerPids.add(pid); everyPid.set(pid, cmdline) }
    } else if (kind.startsWith('bare') || kind === 'throng') {
      readyAt = (await c.waitFor((e) => e.event === 'all-listening', { what: 'all-listening' })).at
    } else {
      // the `workers`-th worker.ready event (the predicate may see an event more than once)
      const nth = (i) => c.events.slice(0, i + 1).filter((e) => e.event === 'worker.ready').length
      readyAt = (await c.waitFor((e, i) => e.event === 'worker.ready' && nth(i) >= workers, { what: `${workers} worker.ready` })).at
    }
    c.listenMs = readyAt - spawnedAt
  } catch (err) {
    await c.stop()
    throw err
  }
  return c
}

/** [pid, its command line] of every process whose parent is `pid` (from /proc). */
function childPids (pid) {
  const out = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push([Number(entry), fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8')])
    } catch {}
  }
  return out
}

/** Polls until the port accepts a connection; returns the time it did. */
async function waitForPort (c, port, timeoutMs) {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (c.exit) throw new Error(`${c.label} exited before listening; stderr: ${c.stderr.trim().slice(-500)}`)
    const at = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1')
      socket.once('connect', () => { const t = performance.now(); socket.destroy(); resolve(t) })
      socket.once('error', () => resolve(null))
    })
    if (at !== null) return at
    await sleep(2)
  }
  throw new Error(`${c.label}: port ${port} not accepting within ${timeoutMs} ms`)
}

/** SIGTERM, wait (15 s), SIGKILL if needed; then make sure every worker it reported is gone. */
async function stop (c) {
  if (!live.has(c)) return c.exit
  try {
    if (!c.exit) {
      c.stopSentAt = performance.now()
      c.child.kill('SIGTERM')
      let timer
      const exited = await Promise.race([c.exited, new Promise((resolve) => { timer = setTimeout(resolve, 15_000, null) })])
      clearTimeout(timer)
      if (!exited) {
        c.forcedKill = true
        c.child.kill('SIGKILL')
        await c.exited
      }
    }
    // A bare primary dies at once on SIGTERM; its workers follow when the IPC
    // channel closes. Give them a moment, then kill whatever of ours remains.
    const deadline = performance.now() + 3000
    while ([...c.workerPids].some((pid) => isOurs(pid)) && performance.now() < deadline) await sleep(20)
    c.leftoverWorkers = []
    for (const pid of c.workerPids) {
      if (isOurs(pid)) {
        c.leftoverWorkers.push(pid)
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
    }
  } finally {
    live.delete(c)
    if (c.tempDir) fs.rmSync(c.tempDir, { recursive: true, force: true })
  }
  return c.exit
}

/**
 * Remembers a PID started outside start() (a helper process, its workers), so that
 * the emergency cleanup and the leftover check at the end cover it; `expected` is a
 * string its /proc cmdline contains.
 */
export function track (pid, expected) {
  if (typeof pid === 'number') everyPid.set(pid, expected)
}

/** Is this PID alive and still running what we started under it (not a recycled PID)? */
export function isOurs (pid) {
  const expected = everyPid.get(pid)
  if (!expected) return false
  let cmdline
  try { cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') } catch { return false }
  let state = ''
  try { state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '' } catch { return false }
  if (state === 'Z') return false // exited, waiting to be reaped by its parent
  return cmdline.includes(expected)
}

/** VmRSS of a process in MiB, or null. */
export function rssMb (pid) {
  try {
    const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
    return Number.isFinite(kb) ? kb / 1024 : null
  } catch {
    return null
  }
}

/** PIDs started during this run that are still alive (should be none at the end). */
export function leftovers () {
  return [...everyPid.keys()].filter((pid) => isOurs(pid))
}

/** Last resort on an abnormal exit of the benchmark: SIGKILL by PID, synchronously. */
export function killEverythingNow () {
  for (const c of live) {
    try { c.child.kill('SIGKILL') } catch {}
  }
  for (const pid of everyPid.keys()) {
    if (isOurs(pid)) { try { process.kill(pid, 'SIGKILL') } catch {} }
  }
}
