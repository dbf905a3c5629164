// The CLI with real workers: forking, restart with backoff, crash rate, boot
// failure, signals, and what happens when the primary dies.
import t, { type Test } from 'tap'
import { startCli, fixture, alive, type Cli, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { get, freePort, distinct, until } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

t.test('serves from 2 workers with stable ids, logs the lifecycle, stops on SIGTERM', async (t) => {
  const port = await freePort()
  const cli = startCli(t, [fixture('apps/http.js'), '-w', '2', '--', '--flag', 'x'], { env: { PORT: String(port) } })
  const start = await cli.waitFor('primary.start')
  t.match(start, { workers: 2, schedulingPolicy: 'rr', configFile: null })
  await cli.waitFor('worker.ready', (e) => e.workerId === 0)
  await cli.waitFor('worker.ready', (e) => e.workerId === 1)
  const listening = await cli.waitFor('worker.listening')
  t.equal(listening.address, `127.0.0.1:${port}`)

  const pids = await distinct(`http://127.0.0.1:${port}/`, 2)
  t.equal(pids.size, 2, 'two distinct worker pids answer')
  t.same(new Set(pids), new Set(cli.workerPids()), 'the answering pids are the forked workers')
  const reply = (await get(`http://127.0.0.1:${port}/`)).json()
  t.same(reply.argv, ['--flag', 'x'], 'app args after -- reach the app')
  t.ok(['0', '1'].includes(reply.workerId), 'CLUSTER_RUN_WORKER_ID is a slot number')

  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
  const complete = cli.events.find((e) => e.event === 'shutdown.complete')
  t.match(complete, { signal: 'SIGTERM', exitCode: 0 })
  t.equal(cli.events.filter((e) => e.event === 'worker.exit' && e.expected === true).length, 2)
  for (const pid of cli.workerPids()) t.notOk(alive(pid), `worker ${pid} is gone`)
})

t.test('a crashed worker is restarted with backoff in the same slot', async (t) => {
  const port = await freePort()
  const cli = startCli(t, [fixture('apps/crashy.js'), '-w', '2'], { env: { PORT: String(port) } })
  await cli.waitFor('worker.ready', (e) => e.workerId === 1)
  await cli.waitFor('worker.ready', (e) => e.workerId === 0)
  await get(`http://127.0.0.1:${port}/crash`).catch(() => {})
  const exit = await cli.waitFor('worker.exit')
  t.match(exit, { code: 7, signal: null, expected: false, reason: 'crashed' })
  const restart = await cli.waitFor('worker.restart')
  t.match(restart, { workerId: exit.workerId, attempt: 1 })
  t.ok(restart.delayMs >= 90 && restart.delayMs <= 110, `first delay is initialMs ± jitter (${restart.delayMs})`)
  const refork = await cli.waitFor('worker.fork', (e) => e.workerId === exit.workerId && e.pid !== exit.pid)
  await cli.waitFor('worker.ready', (e) => e.pid === refork.pid)
  const ids = await distinct(`http://127.0.0.1:${port}/`, 2, (r) => r.json().workerId)
  t.same([...ids].sort(), ['0', '1'], 'the replacement inherited the slot id')
  cli.signal('SIGINT')
  t.equal(await cli.exited, 0)
})

t.test('crash rate exceeded: stops restarting, exits 1 with a fatal event', async (t) => {
  const port = await freePort()
  const cli = startCli(t, [fixture('apps/crashy.js'), '-w', '2'], {
    env: { PORT: String(port) },
  })
  await cli.waitFor('worker.ready', (e) => e.workerId === 0)
  await cli.waitFor('worker.ready', (e) => e.workerId === 1)
  // The default rate is 5 crashes a minute: the 6th trips it.
  for (let crash = 1; crash <= 6; crash++) {
    await until(async () => {
      await get(`http://127.0.0.1:${port}/crash`).catch(() => {})
      return cli.events.filter((e) => e.event === 'worker.exit').length >= crash
    }, `crash ${crash}`, 20_000, 50)
  }
  t.equal(await cli.exited, 1)
  const fatal = cli.events.find((e) => e.event === 'crash-rate.exceeded')
  t.ok(fatal, 'crash-rate.exceeded is logged')
  t.match(fatal, { crashes: 6, windowMs: 60_000, level: 60 })
  t.ok(fatal!.lastExits.some((x: any) => x.code === 7), 'the fatal log names the last exit codes')
  for (const pid of cli.workerPids()) t.notOk(alive(pid), `worker ${pid} is gone`)
})

t.test('an app that throws at boot ends quickly with exit 3, no fork loop', async (t) => {
  const cli = startCli(t, [fixture('apps/boot-throw.js'), '-w', '2'])
  t.equal(await cli.exited, 3)
  const forks = cli.events.filter((e) => e.event === 'worker.fork').length
  // crashes + 1 trip the breaker; each other slot may have one restart in flight
  t.ok(forks <= 6 + 1, `forked ${forks} workers, bounded by the crash rate`)
  const failed = cli.events.find((e) => e.event === 'boot.failed')
  t.ok(failed, 'boot.failed is logged')
  t.ok(failed!.stderr.some((line: string) => line.includes('DATABASE_URL is not set')), 'it shows the worker\'s last stderr lines')
  t.ok(cli.events.filter((e) => e.event !== 'worker.output').length < 40, 'the cluster\'s own events stay few')
  t.ok(cli.events.some((e) => e.event === 'worker.output' && e.stream === 'stderr' && /about to fail: missing DATABASE_URL/.test(e.text)), 'the workers\' stderr is in the log, attributed')
})

/** A server of this test that holds a port of 127.0.0.1, closed at teardown. */
async function portInUse (t: Test): Promise<number> {
  const port = await freePort()
  const blocker = (await import('node:net')).createServer()
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  return port
}

/** Resolves with the exit code, or fails the test if the CLI has not exited by then (its teardown kills it). */
async function exitWithin (t: Test, cli: Cli, ms: number): Promise<number | string | undefined> {
  const deadline = new Promise<undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms)
    void cli.exited.finally(() => clearTimeout(timer))
  })
  const code = await Promise.race([cli.exited, deadline])
  if (code === undefined) t.fail(`still running after ${ms} ms; stdout: ${cli.stdout().slice(-2000)}`)
  return code
}

t.test('a port in use is a boot failure with the address and the code, for an app that throws', async (t) => {
  const port = await portInUse(t)
  const cli = startCli(t, [fixture('apps/http.js'), '-w', '2'], { env: { PORT: String(port) } })
  // a deadline for a hang, not a speed: how it ended is what the events below say
  t.equal(await exitWithin(t, cli, 60_000), 3)
  const failed = cli.events.find((e) => e.event === 'boot.failed')
  t.match(failed, { level: 60, cause: 'listen-failed', code: 'EADDRINUSE', address: `127.0.0.1:${port}`, message: new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`) })
  t.ok(failed!.stderr.join('\n').includes('EADDRINUSE'), 'the stderr tail names EADDRINUSE')
  t.match(cli.events.find((e) => e.event === 'worker.listen-failed'), { level: 50, code: 'EADDRINUSE', address: `127.0.0.1:${port}` })
  t.equal(cli.events.filter((e) => e.event === 'worker.restart').length, 0, 'no restart: the first failure stops the cluster')
})

t.test('a port in use with Express 5, which swallows the error and keeps running: exit 3 in seconds, not a restart loop', async (t) => {
  const port = await portInUse(t)
  const cli = startCli(t, [fixture('apps/express-listen.js'), '-w', '2'], { env: { PORT: String(port) } })
  t.equal(await exitWithin(t, cli, 60_000), 3, 'exit 3 (before: each worker killed as not-ready after 30 s, forever)')
  t.match(cli.events.find((e) => e.event === 'worker.listen-failed'), { level: 50, code: 'EADDRINUSE', address: `127.0.0.1:${port}` })
  t.notOk(cli.events.some((e) => e.event === 'worker.exit' && e.reason === 'not-ready'), 'no worker waited out its ready timeout: the listen failure ended it')
  t.match(cli.events.find((e) => e.event === 'worker.exit'), { reason: 'listen-failed', signal: 'SIGKILL' })
  t.match(cli.events.find((e) => e.event === 'boot.failed'), { cause: 'listen-failed', code: 'EADDRINUSE', address: `127.0.0.1:${port}` })
  t.match(cli.stdout(), 'App listening', 'the app believed it listened')
})

t.test('workers exit by themselves when the primary is killed with SIGKILL', async (t) => {
  const port = await freePort()
  const cli = startCli(t, [fixture('apps/http.js'), '-w', '2'], { env: { PORT: String(port) } })
  await cli.waitFor('worker.ready', (e) => e.workerId === 0)
  await cli.waitFor('worker.ready', (e) => e.workerId === 1)
  const pids = cli.workerPids()
  cli.signal('SIGKILL')
  await cli.exited
  // a deadline, not a speed: the exit follows the IPC channel's close, which a loaded machine delays
  await until(() => pids.every((pid) => !alive(pid)), 'orphaned workers to exit', 30_000)
  t.pass('every worker exited by itself')
})

t.test('schedulingPolicy none is applied and logged', async (t) => {
  const port = await freePort()
  const cli = startCli(t, [fixture('apps/http.js'), '-w', '2', '--scheduling-policy', 'none'], { env: { PORT: String(port) } })
  t.match(await cli.waitFor('primary.start'), { schedulingPolicy: 'none' })
  await cli.waitFor('worker.ready', (e) => e.workerId === 0)
  await cli.waitFor('worker.ready', (e) => e.workerId === 1)
  t.equal((await get(`http://127.0.0.1:${port}/`)).status, 200)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('TypeScript entries run through tsx with no loader of the caller (.ts, .ts in a CJS package, .mts, .cts)', async (t) => {
  for (const [file, kind] of [['apps/typed.ts', 'ts'], ['cjs-package/server.ts', 'ts-cjs'], ['apps/typed.mts', 'mts'], ['apps/typed.cts', 'cts']]) {
    const port = await freePort()
    const cli = startCli(t, [fixture(file), '-w', '1'], { env: { PORT: String(port) } })
    await cli.waitFor('worker.ready')
    t.equal((await get(`http://127.0.0.1:${port}/`)).json().kind, kind, file)
    cli.signal('SIGTERM')
    t.equal(await cli.exited, 0)
  }
})
