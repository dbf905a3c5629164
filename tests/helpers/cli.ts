// Start the real CLI as a child process and watch its event log.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import type { Test } from 'tap'
import { kill, reapLater } from './reap.js'

// Workers that run() forks in a test file get the file's node flags, as they would an
// app's. Tap's TypeScript and mock loaders among them cost each worker over a second
// of CPU and serve it nothing (a TypeScript app gets cluster-run's own loader), so they
// go; coverage is recorded through NODE_OPTIONS, which stays.
const unneeded = /@tapjs\/(typescript|mock)\//
process.execArgv.splice(0, process.execArgv.length, ...process.execArgv.filter((flag) => !unneeded.test(flag)))

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** The CLI as it ships: `npm run build` (the pretest script) compiles lib/ and bundles the CLI into dist/bundle/. */
export const CLI = fileURLToPath(new URL('../../dist/bundle/cli.js', import.meta.url))
export const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url))

/**
 * tap's limit for a whole test file (120 s, package.json) is raised to this by the
 * files that run real processes: on a busy machine such a file takes minutes, and
 * every wait in it has a deadline of its own, so this limit only has to catch a
 * file that hangs. `t.setTimeout(FILE_TIMEOUT_MS)` at the top of the file.
 */
export const FILE_TIMEOUT_MS = 10 * 60_000

/**
 * For run() in a test: workers forked by the test process load tap's TypeScript
 * loader and coverage, and on a busy machine their boot may take longer than the
 * default ready timeout (10 s), which would count them as crashed. A deadline, for
 * tests that are not about readiness.
 */
export const SLOW_BOOT = { readyTimeoutMs: 60_000 }

export type LogEvent = Record<string, any> & { event: string }

export interface Cli {
  child: ChildProcess
  events: LogEvent[]
  stdout: () => string
  stderr: () => string
  /** resolves with the first event (past or future) that matches */
  waitFor: (event: string, match?: (e: LogEvent) => boolean, timeoutMs?: number) => Promise<LogEvent>
  /** resolves once `count` workers of the first generation are ready */
  untilReady: (count: number, timeoutMs?: number) => Promise<void>
  /** resolves with the exit code (or the signal name) */
  exited: Promise<number | string>
  /** every worker pid this primary has forked */
  workerPids: () => number[]
  signal: (sig: NodeJS.Signals) => void
}

export interface CliOptions {
  env?: Record<string, string | undefined>
  cwd?: string
}

/**
 * Runs `cluster-run <args>`: the bundled dist/bundle/cli.js in a plain `node`, so
 * dist/ must be built from the current lib/ (`npm test` builds it first; a
 * lone `npx tap` does not). It does not run under the test's own loaders (the
 * TypeScript loader is not passed on); it inherits only tap's NODE_OPTIONS
 * preload, which records coverage for the primary and its workers, mapped back
 * to lib/*.ts through dist's source maps. Every process it started is killed at
 * teardown if it is still there.
 */
export function startCli (t: Test, args: string[], options: CliOptions = {}): Cli {
  // Each CLI gets a control-socket directory of its own (unless the test sets one):
  // clusters of the same app in parallel tests would otherwise share a name.
  const home = options.env && 'CLUSTER_RUN_HOME' in options.env ? {} : { CLUSTER_RUN_HOME: controlHome(t) }
  return watchCli(t, spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...home, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }))
}

/**
 * Watches a CLI started some other way (its stdout and stderr piped): the
 * event log, the exit, and the teardown of startCli(). `ownPids: false` when the
 * CLI runs in a PID namespace of its own: the worker pids it logs are not this
 * host's, so they are neither remembered nor killed here.
 */
export function watchCli (t: Test, child: ChildProcess, { ownPids = true } = {}): Cli {
  reapLater(child.pid)
  const events: LogEvent[] = []
  let out = ''
  let err = ''
  const waiters = new Set<() => void>()
  let pending = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) {
      if (!line.startsWith('{')) continue
      try {
        const parsed = JSON.parse(line)
        if (typeof parsed.event === 'string') events.push(parsed)
        if (ownPids && parsed.event === 'worker.fork') reapLater(parsed.pid)
      } catch {}
    }
    for (const w of waiters) w()
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
  const exited = once(child, 'exit').then(([code, signal]) => {
    for (const w of waiters) w()
    return (code ?? signal) as number | string
  })
  let done = false
  void exited.then(() => { done = true })

  const workerPids = (): number[] => events.filter((e) => e.event === 'worker.fork').map((e) => e.pid)

  t.teardown(async () => {
    if (!done) {
      child.kill('SIGKILL')
      await exited
    }
    // a worker whose loop is blocked never notices that its primary is gone
    if (ownPids) for (const pid of workerPids()) kill(pid)
  })

  const waitFor = (event: string, match: (e: LogEvent) => boolean = () => true, timeoutMs = 30_000): Promise<LogEvent> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = events.find((e) => e.event === event && match(e))
        if (found) return finish(() => resolve(found))
        if (done) return finish(() => reject(new Error(`process exited before "${event}"; stderr: ${err.slice(-2000)}; stdout: ${out.slice(-2000)}`)))
      }
      const timer = setTimeout(() => finish(() => reject(new Error(`timed out waiting for "${event}"; stderr: ${err.slice(-2000)}; stdout: ${out.slice(-3000)}`))), timeoutMs)
      const finish = (fn: () => void): void => { clearTimeout(timer); waiters.delete(check); fn() }
      waiters.add(check)
      check()
    })

  const untilReady = async (count: number, timeoutMs = 30_000): Promise<void> => {
    const ready = (): number => events.filter((e) => e.event === 'worker.ready' && e.generation === 0).length
    await waitFor('worker.ready', () => ready() >= count, timeoutMs)
  }

  return {
    child,
    events,
    stdout: () => out,
    stderr: () => err,
    waitFor,
    untilReady,
    exited,
    workerPids,
    signal: (sig) => { child.kill(sig) },
  }
}

/** Whether a process with this pid exists. */
export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export interface Ran { code: number, stdout: string, stderr: string }

/** `cluster-run <args>` as a client (ls, status, logs…) in the given control-socket home, run to its end. */
export function command (home: string, args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const options = { env: { ...process.env, CLUSTER_RUN_HOME: home, ...env }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }
    const child = execFile(process.execPath, [CLI, ...args], options, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr })
    })
    reapLater(child.pid)
  })
}

/** A fresh directory for control sockets, removed at teardown. Short: a socket path has at most 107 bytes. */
export function controlHome (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cr-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return path.join(dir, 'home')
}

/** Points this test process's run() clusters at a control-socket directory of its own. */
export function isolateControlSockets (t: Test): string {
  const previous = process.env.CLUSTER_RUN_HOME
  const home = controlHome(t)
  process.env.CLUSTER_RUN_HOME = home
  t.teardown(() => {
    if (previous === undefined) delete process.env.CLUSTER_RUN_HOME
    else process.env.CLUSTER_RUN_HOME = previous
  })
  return home
}

/**
 * The text of a cluster.config.mjs that takes as long as a test wants to load: it
 * finishes once the file `go` exists (a minute at most, or as soon as the process
 * reading it is orphaned), and exports `config`. A signal sent before `go` is
 * written surely lands while the config loads.
 */
export function configWaitingFor (go: string, config: object, before = ''): string {
  return `import fs from 'node:fs'
${before}const parent = process.ppid
const deadline = Date.now() + 60_000
while (!fs.existsSync(${JSON.stringify(go)}) && Date.now() < deadline && process.ppid === parent) await new Promise((resolve) => setTimeout(resolve, 10))
export default ${JSON.stringify(config)}
`
}
