// How the deployment recipes (examples/) stop and reap, with real processes:
// cluster-run as PID 1 of a fresh PID namespace (a container without an init), the
// zombies that leaves and tini reaping them, a signal to the whole process group,
// that a shutdown delay holds for a SIGTERM to the group as to the primary, and a
// read-only HOME against the default control socket. Needs root, unshare
// (util-linux) and tini (Debian's package; .ci/run installs it).
//
// The namespaced runs do not use watchCli(): its teardown kills the worker pids the
// log names, and inside a PID namespace those are the namespace's pids, which are
// other processes on the host.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { CLI, ROOT, fixture, watchCli, controlHome, type LogEvent, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { get, freePort, until, type Reply } from './helpers/http.js'
import { kill, reapLater } from './helpers/reap.js'

t.setTimeout(FILE_TIMEOUT_MS)

const LIFECYCLE = fixture('apps/lifecycle.js')
const ORPHAN = fixture('apps/orphan.js')

const has = (cmd: string): boolean => !spawnSync('sh', ['-c', `command -v ${cmd}`]).status
const missing = [
  process.getuid?.() === 0 ? undefined : 'root',
  has('unshare') ? undefined : 'unshare (util-linux)',
  has('tini') ? undefined : 'tini (apt-get install tini; .ci/run installs it)',
].filter(Boolean)
if (missing.length) {
  t.fail(`these tests need ${missing.join(', ')}`)
  t.end()
} else {
  tests()
}

// ---- /proc ------------------------------------------------------------------

interface Proc {
  pid: number
  /** the thread's name (node 24 names its main thread MainThread) */
  comm: string
  /** argv, empty for a zombie */
  argv: string[]
  state: string
  ppid: number
  pgrp: number
  startTime: string
  /** the pid inside its own PID namespace */
  nsPid: number
}

/** A process as /proc shows it, or undefined once it is gone (reaped). */
function proc (pid: number): Proc | undefined {
  let stat: string
  let status: string
  let cmdline: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return undefined
  }
  // comm may hold spaces and parentheses: it ends at the last ')'
  const close = stat.lastIndexOf(')')
  const fields = stat.slice(close + 2).split(' ')
  const nsPids = /^NSpid:\s+(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number) ?? [pid]
  return { pid, comm: stat.slice(stat.indexOf('(') + 1, close), argv: cmdline.split('\0').filter(Boolean), state: fields[0]!, ppid: Number(fields[1]), pgrp: Number(fields[2]), startTime: fields[19]!, nsPid: nsPids.at(-1)! }
}

/** The children of a process (host pids), zombies included. */
function children (pid: number): Proc[] {
  let list: string
  try {
    list = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
  } catch {
    return []
  }
  return list.trim().split(/\s+/).filter(Boolean).map(Number).map(proc).filter((p): p is Proc => p !== undefined)
}

// ---- a CLI in a fresh PID namespace ----------------------------------------------

interface Namespaced {
  /** the unshare process (host pid); it exits with its child's status */
  child: ChildProcess
  events: LogEvent[]
  waitFor: (event: string, match?: (e: LogEvent) => boolean, timeoutMs?: number) => Promise<LogEvent>
  /** the namespace's PID 1, as the host sees it */
  init: () => Promise<Proc>
  exited: Promise<number | string>
}

/**
 * `unshare --pid --fork --mount-proc --kill-child <argv>`: argv runs as PID 1 of a
 * new PID namespace (and a mount namespace for its /proc); the network namespace
 * is shared, so 127.0.0.1 reaches it. At teardown the namespace's PID 1 and unshare
 * are SIGKILLed if still there; the kernel kills the rest of the namespace with
 * its PID 1.
 */
function startNamespaced (t: Test, argv: string[], env: Record<string, string>): Namespaced {
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', ...argv], {
    cwd: ROOT,
    env: { ...process.env, CLUSTER_RUN_HOME: controlHome(t), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let initProc: Proc | undefined
  // Only while unshare is alive is its child surely still the process found; once
  // unshare is killed (watchCli's teardown), --kill-child takes PID 1 with it.
  t.teardown(() => { if (initProc && proc(initProc.pid)?.ppid === child.pid) kill(initProc.pid) })
  const { events, waitFor, exited } = watchCli(t, child, { ownPids: false })

  const init = async (): Promise<Proc> => {
    initProc ??= await until(() => children(child.pid!).find((p) => p.nsPid === 1), 'the namespace\'s PID 1')
    // with it, the kernel kills every process of the namespace
    reapLater(initProc.pid)
    return initProc
  }

  return { child, events, waitFor, init, exited }
}

/** The node that runs this test (its major is the one under test), on the built CLI. */
const cliArgv = (...args: string[]): string[] => [process.execPath, path.relative(ROOT, CLI), ...args]

/** Starts `count` GETs of /slow?ms=ms and resolves once the app has started all of them. */
async function inFlight (events: LogEvent[], waitFor: Namespaced['waitFor'], url: string, count: number, ms = 1500): Promise<Promise<Reply[]>> {
  const before = events.filter((e) => e.event === 'app.slow-start').length
  const replies = Promise.all(Array.from({ length: count }, () => get(`${url}/slow?ms=${ms}`)))
  replies.catch(() => {}) // awaited by the caller; a failure there is the test's finding
  await waitFor('app.slow-start', () => events.filter((e) => e.event === 'app.slow-start').length >= before + count)
  return replies
}

function tests (): void {
  t.test('cluster-run as PID 1 of a PID namespace: SIGTERM drains every in-flight request, exit 0', async (t) => {
    const port = await freePort()
    const ns = startNamespaced(t, cliArgv(LIFECYCLE, '-w', '2'), { PORT: String(port) })
    const start = await ns.waitFor('primary.start')
    t.equal(start.pid, 1, 'the primary is PID 1 in its namespace')
    await ns.waitFor('worker.ready', () => ns.events.filter((e) => e.event === 'worker.ready').length >= 2)
    const init = await ns.init()
    t.same(init.argv.slice(0, 2), [process.execPath, path.relative(ROOT, CLI)], 'the namespace\'s PID 1 is the primary itself, no init')

    const replies = await inFlight(ns.events, ns.waitFor, `http://127.0.0.1:${port}`, 3)
    process.kill(init.pid, 'SIGTERM')
    const answers = await replies
    t.same(answers.map((r) => r.status), [200, 200, 200], 'every in-flight request completed')
    const code = await ns.exited
    const complete = ns.events.find((e) => e.event === 'shutdown.complete')
    t.equal(complete?.exitCode, 0, 'cluster-run stopped with 0')
    t.equal(code, 0, 'and unshare exits with its child\'s status: 0')
  })

  t.test('an orphan of a worker, with cluster-run as PID 1: it stays a zombie', async (t) => {
    const port = await freePort()
    const ns = startNamespaced(t, cliArgv(ORPHAN, '-w', '1'), { PORT: String(port) })
    await ns.waitFor('worker.ready')
    const init = await ns.init()
    const orphans: number[] = []
    for (let i = 0; i < 3; i++) {
      const reply = await get(`http://127.0.0.1:${port}/orphan?ms=100`)
      t.equal(reply.status, 200)
      orphans.push(reply.json().orphan)
    }
    // Each sleep's shell exited at once: the sleeps were re-parented to PID 1, the
    // primary, which never waits for them. Once they exit they stay zombies.
    const zombies = await until(() => {
      const found = children(init.pid).filter((p) => orphans.includes(p.nsPid) && p.state === 'Z')
      return found.length === orphans.length ? found : undefined
    }, 'three zombies')
    for (const z of zombies) {
      t.equal(z.comm, 'sleep')
      t.equal(z.ppid, init.pid, `sleep ${z.nsPid} (host pid ${z.pid}): state Z, its parent is cluster-run (PID 1)`)
    }
    t.comment(`zombies under cluster-run as PID 1: ${zombies.map((z) => `${z.comm} ${z.pid} ${z.state}`).join(', ')}`)
    // A new request and another turn of the primary's loop change nothing: nobody reaps them.
    t.equal((await get(`http://127.0.0.1:${port}/`)).status, 200)
    t.equal(children(init.pid).filter((p) => p.state === 'Z').length, 3, 'still three zombies')

    process.kill(init.pid, 'SIGTERM')
    t.equal(await ns.exited, 0, 'a clean stop all the same (the kernel clears the namespace with its PID 1)')
  })

  t.test('the same under tini as PID 1: the orphan is reaped, and a SIGTERM to tini still drains, exit 0', async (t) => {
    const port = await freePort()
    const ns = startNamespaced(t, ['tini', '--', ...cliArgv(ORPHAN, '-w', '1')], { PORT: String(port) })
    const start = await ns.waitFor('primary.start')
    t.not(start.pid, 1, `the primary is PID ${start.pid}, not 1`)
    await ns.waitFor('worker.ready')
    const init = await ns.init()
    t.equal(path.basename(init.argv[0] ?? ''), 'tini', 'tini is PID 1')
    const primary = children(init.pid).find((p) => p.nsPid === start.pid)
    t.ok(primary, 'the primary is tini\'s child')

    // an orphan that sleeps a minute: the test ends its sleep once it has seen it under tini
    const reply = await get(`http://127.0.0.1:${port}/orphan?ms=60000`)
    t.equal(reply.status, 200)
    const nsPid = reply.json().orphan
    // Seen while it sleeps: its parent is now tini.
    const orphan = await until(() => children(init.pid).find((p) => p.nsPid === nsPid), 'the orphan under tini')
    t.equal(orphan.comm, 'sleep')
    t.equal(orphan.ppid, init.pid, `sleep ${nsPid} (host pid ${orphan.pid}) was re-parented to tini`)
    process.kill(orphan.pid, 'SIGKILL')
    // Once it exits, tini reaps it: the pid leaves /proc (a zombie would stay there).
    await until(() => {
      const now = proc(orphan.pid)
      return now === undefined || now.startTime !== orphan.startTime
    }, 'the orphan to be reaped')
    t.pass('the orphan exited and was reaped: no zombie')
    t.same(children(init.pid).map((p) => p.nsPid), [start.pid], 'tini\'s only child is the primary')

    const replies = await inFlight(ns.events, ns.waitFor, `http://127.0.0.1:${port}`, 3)
    process.kill(init.pid, 'SIGTERM')
    t.same((await replies).map((r) => r.status), [200, 200, 200], 'tini forwarded the SIGTERM: every in-flight request completed')
    const code = await ns.exited
    t.equal(ns.events.find((e) => e.event === 'shutdown.start')?.signal, 'SIGTERM')
    t.equal(ns.events.find((e) => e.event === 'shutdown.complete')?.exitCode, 0)
    t.equal(code, 0, 'tini exits with cluster-run\'s status, and unshare with tini\'s')
  })

  t.test('exit codes pass through tini and unshare: an app that fails at boot is 3, as the container runtime sees it', async (t) => {
    const dir = t.testdir({
      'cluster.config.json': JSON.stringify({ app: fixture('apps/boot-throw.js'), workers: 1, maxCrashRate: { crashes: 1, windowMs: 60_000 }, restartBackoff: { initialMs: 0 } }),
    })
    const ns = startNamespaced(t, ['tini', '--', ...cliArgv('--config', path.join(dir, 'cluster.config.json'))], {})
    t.equal(await ns.exited, 3, 'exit 3 (RestartPreventExitStatus=3 in the unit; a CrashLoopBackOff in Kubernetes)')
    t.ok(ns.events.some((e) => e.event === 'boot.failed'))
  })

  // ---- a signal to the whole process group --------------------------------------

  /** The CLI in a process group of its own (detached), as a container's or a terminal's. */
  function startGroupLeader (t: Test, args: string[], env: Record<string, string>) {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      env: { ...process.env, CLUSTER_RUN_HOME: controlHome(t), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    return watchCli(t, child) // its teardown SIGKILLs the primary and every worker by pid
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    t.test(`${signal} to the whole process group at once: every in-flight request completes, exit 0`, async (t) => {
      const port = await freePort()
      const cli = startGroupLeader(t, [LIFECYCLE, '-w', '2'], { PORT: String(port) })
      await cli.untilReady(2)
      const pgid = cli.child.pid!
      t.equal(proc(pgid)?.pgrp, pgid, 'the primary leads a process group')
      for (const pid of cli.workerPids()) t.equal(proc(pid)?.pgrp, pgid, `worker ${pid} is in its group`)

      const replies = await inFlight(cli.events, cli.waitFor, `http://127.0.0.1:${port}`, 3)
      process.kill(-pgid, signal)
      t.same((await replies).map((r) => r.status), [200, 200, 200], 'every in-flight request completed')
      t.equal(await cli.exited, 0)
      const exits = cli.events.filter((e) => e.event === 'worker.exit')
      t.equal(exits.length, 2)
      t.ok(exits.every((e) => e.expected && e.reason === 'drained' && e.code === 0), 'both workers drained and exited 0')
      const stopAt = cli.events.findIndex((e) => e.event === 'shutdown.start' || e.event === 'worker.drain')
      t.notOk(cli.events.slice(stopAt).some((e) => e.event === 'worker.fork'), 'no worker was replaced')
      t.match(cli.events.find((e) => e.event === 'shutdown.complete'), { exitCode: 0, killed: 0 })
    })
  }

  t.test('shutdownDelayMs holds whether the SIGTERM reaches the primary alone or the whole group', async (t) => {
    const delayMs = 2500
    const runOnce = async (t: Test, target: 'primary' | 'group') => {
      const port = await freePort()
      const metricsPort = await freePort()
      const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: LIFECYCLE, workers: 2, shutdownDelayMs: delayMs, metrics: { port: metricsPort } }) })
      const cli = startGroupLeader(t, ['--config', path.join(dir, 'cluster.config.json')], { PORT: String(port) })
      await cli.untilReady(2)
      const url = `http://127.0.0.1:${port}`
      const replies = await inFlight(cli.events, cli.waitFor, url, 1)
      process.kill(target === 'group' ? -cli.child.pid! : cli.child.pid!, 'SIGTERM')
      await cli.waitFor('shutdown.start')
      return { cli, url, replies, metrics: `http://127.0.0.1:${metricsPort}` }
    }

    /** Readiness and three new requests right after the shutdown began, all answered before any worker drained. */
    const duringTheDelay = async (t: Test, { cli, url, metrics }: Awaited<ReturnType<typeof runOnce>>): Promise<void> => {
      // unready from the step that logs the start: the very next probe says so
      t.equal((await get(`${metrics}/readyz`)).status, 503, 'readiness is 503 at once')
      for (let i = 0; i < 3; i++) t.equal((await get(`${url}/`)).status, 200, 'a new request during the delay: 200')
      const answeredAt = Date.now()
      t.equal(await cli.exited, 0)
      const drain = cli.events.find((e) => e.event === 'worker.drain')
      t.ok(drain && answeredAt < Date.parse(drain.time), 'answered before any worker began to drain')
      t.ok(cli.events.find((e) => e.event === 'shutdown.complete')!.durationMs >= delayMs, 'the stop took the delay')
    }

    t.test('SIGTERM to the primary (tini without -g, KillMode=mixed): new requests are served through the delay', async (t) => {
      const run = await runOnce(t, 'primary')
      await duringTheDelay(t, run)
      t.equal((await run.replies)[0]!.status, 200)
    })

    // systemd's default KillMode=control-group, tini -g: the workers get the SIGTERM too,
    // and keep the delay as the primary does (not ready, still serving, then the drain).
    t.test('SIGTERM to the group (tini -g, KillMode=control-group): new requests are served through the delay too', async (t) => {
      const run = await runOnce(t, 'group')
      await duringTheDelay(t, run)
      t.equal((await run.replies)[0]!.status, 200, 'the in-flight one completed')
    })
  })

  // ---- a read-only HOME -------------------------------------------------------------

  /** A fresh directory with a short path (a unix socket's path has at most 107 bytes), removed at teardown. */
  function shortDir (t: Test): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cr-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    return dir
  }

  /** The CLI with $HOME on a read-only bind mount (in a mount namespace of its own), no CLUSTER_RUN_HOME. */
  function startReadOnlyHome (t: Test, env: Record<string, string>, args: string[]) {
    const home = shortDir(t)
    const { CLUSTER_RUN_HOME: _, XDG_RUNTIME_DIR: __, ...base } = process.env
    const child = spawn('unshare', ['--mount', 'sh', '-c', 'mount --bind -o ro "$HOME" "$HOME" && exec "$@"', 'sh', process.execPath, CLI, ...args], {
      cwd: ROOT,
      env: { ...base, HOME: home, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    return watchCli(t, child) // same PID namespace: the logged pids are host pids
  }

  t.test('a read-only HOME (a read-only root filesystem): the default control socket fails the start, CLUSTER_RUN_HOME on a writable dir fixes it', async (t) => {
    const port = await freePort()
    const failing = startReadOnlyHome(t, { PORT: String(port) }, [LIFECYCLE, '-w', '1'])
    t.equal(await failing.exited, 73, 'exit 73 before anything is forked')
    t.match(failing.stderr(), /cannot open the control socket in .*\.cluster-run: EROFS/)
    t.same(failing.workerPids(), [], 'no worker was forked')

    const writable = path.join(shortDir(t), 'cluster-run') // as the Dockerfile's CLUSTER_RUN_HOME=/tmp/cluster-run
    const working = startReadOnlyHome(t, { PORT: String(port), CLUSTER_RUN_HOME: writable }, [LIFECYCLE, '-w', '1', '--name', 'ro-home'])
    await working.untilReady(1)
    const status = spawnSync(process.execPath, [CLI, 'status', 'ro-home', '--json'], {
      env: { ...process.env, CLUSTER_RUN_HOME: writable }, encoding: 'utf8', timeout: 60_000,
    })
    t.equal(status.status, 0, `cluster-run status answers through ${writable} (${status.stderr})`)
    t.equal(JSON.parse(status.stdout).name, 'ro-home')
    working.signal('SIGTERM')
    t.equal(await working.exited, 0)
  })
}
