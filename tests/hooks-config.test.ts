// Hooks in a TypeScript config file: they run in the primary; one that throws is
// logged as hook.error and the cluster goes on.
import t from 'tap'
import { pathToFileURL } from 'node:url'
import path from 'node:path'
import fs, { readFileSync, realpathSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { startCli, watchCli, controlHome, fixture, configWaitingFor, ROOT, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

t.test('cluster.config.ts with hooks, one of them throwing', async (t) => {
  const port = await freePort()
  const api = pathToFileURL(path.join(ROOT, 'dist/index.js')).href
  const dir = t.testdir({
    'cluster.config.ts': `
      import { defineConfig } from '${api}'
      const say = (event: string, fields: object): void => { process.stdout.write(JSON.stringify({ event, ...fields }) + '\\n') }
      export default defineConfig({
        app: ${JSON.stringify(fixture('apps/http.js'))},
        workers: 2,
        env: { PORT: '${port}' },
        onWorkerFork: ({ workerId }) => { say('hook.fork', { workerId }); if (workerId === 1) throw new Error('fork hook failed') },
        onWorkerReady: async ({ workerId, pid }) => say('hook.ready', { workerId, pid }),
        onWorkerExit: ({ workerId, reason }) => say('hook.exit', { workerId, reason }),
        onShutdown: ({ signal }) => say('hook.shutdown', { signal }),
      })
    `,
  })
  const cli = startCli(t, [], { cwd: dir })
  await until(() => cli.events.filter((e) => e.event === 'hook.ready').length === 2, 'both ready hooks')
  t.match(cli.events.find((e) => e.event === 'hook.error'), { hook: 'onWorkerFork', error: 'fork hook failed', level: 50 })
  t.same(cli.events.filter((e) => e.event === 'hook.fork').map((e) => e.workerId).sort(), [0, 1])
  t.equal((await get(`http://127.0.0.1:${port}/`)).status, 200, 'the cluster serves despite the throwing hook')
  t.match(cli.events.find((e) => e.event === 'primary.start'), { configFile: path.join(dir, 'cluster.config.ts') })
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
  t.match(cli.events.find((e) => e.event === 'hook.shutdown'), { signal: 'SIGTERM' })
  t.same(cli.events.filter((e) => e.event === 'hook.exit').map((e) => e.reason), ['drained', 'drained'])
})

t.test('a config file is evaluated once per read: by the primary when it names hooks, by the reader process otherwise', async (t) => {
  const port = await freePort()
  for (const [file, hooks] of [['cluster.config.ts', true], ['cluster.config.mjs', false]] as const) {
    await t.test(`${file}, ${hooks ? 'with' : 'without'} hooks`, async (t) => {
      const dir = t.testdir({
        [file]: `
          import fs from 'node:fs'
          fs.appendFileSync(${JSON.stringify('evaluations')}, process.pid + '\\n')
          export default {
            app: ${JSON.stringify(fixture('apps/http.js'))},
            workers: 1,
            env: { PORT: '${port}' },
            ${hooks ? 'onReload: () => {},' : ''}
          }
        `,
      })
      const cli = startCli(t, [], { cwd: dir })
      await cli.untilReady(1)
      const evaluations = (): string[] => readFileSync(path.join(dir, 'evaluations'), 'utf8').trim().split('\n')
      t.equal(evaluations().length, 1, 'once at start')
      t.equal(evaluations()[0] === String(cli.child.pid), hooks, hooks ? 'by the primary' : 'by the reader, not the primary')
      cli.signal('SIGHUP')
      await cli.waitFor('reload.complete')
      t.equal(evaluations().length, 2, 'once more for the reload')
      cli.signal('SIGTERM')
      t.equal(await cli.exited, 0)
    })
  }
})

t.test('--pretty prints human-readable lines instead of JSON', async (t) => {
  const port = await freePort()
  const cli = startCli(t, [fixture('apps/http.js'), '-w', '1', '--pretty'], { env: { PORT: String(port) } })
  await until(() => cli.stdout().includes('worker.ready'), 'the ready line')
  t.notOk(cli.stdout().split('\n').some((l) => l.startsWith('{"level"')), 'no JSON lines')
  t.match(cli.stdout(), /INFO.*primary\.start/)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('cluster.config.example.ts is a valid config', async (t) => {
  const cli = startCli(t, ['--config', 'cluster.config.example.ts', '--check'])
  t.equal(await cli.exited, 0, cli.stderr())
  const resolved = JSON.parse(cli.stdout())
  t.equal(resolved.app, path.join(ROOT, 'fixtures/apps/http.js'))
  t.same(resolved.env, { PORT: '3000' })
})

t.test('the README\'s quick start: the linked bin runs this tree, serves, and a Ctrl-C to its process group exits 0', async (t) => {
  const port = await freePort()
  const bin = path.join(ROOT, 'node_modules/.bin/cluster-run')
  t.equal(realpathSync(bin), path.join(ROOT, 'dist/bundle/cli.js'), '`npm ci` linked the bin to this working tree')
  // a process group of its own, as a terminal's: Ctrl-C reaches the primary and the workers
  const cli = watchCli(t, spawn(bin, ['--config', 'cluster.config.example.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), CLUSTER_RUN_HOME: controlHome(t) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  }))
  await cli.untilReady(2)
  t.equal((await get(`http://127.0.0.1:${port}/`)).status, 200)
  process.kill(-cli.child.pid!, 'SIGINT')
  t.equal(await cli.exited, 0, 'a clean stop exits 0')
  t.match(cli.events.find((e) => e.event === 'shutdown.complete'), { exitCode: 0, cut: 0, killed: 0 })
  t.ok(cli.events.filter((e) => e.event === 'worker.exit').every((e) => e.cause === 'shutdown' && e.reason === 'drained'), 'each worker drained for the shutdown')
})

t.test('--log-level warn keeps the info events out of the log', async (t) => {
  const port = await freePort()
  const cli = startCli(t, [fixture('apps/http.js'), '-w', '1', '--log-level', 'warn'], { env: { PORT: String(port) } })
  await until(async () => (await get(`http://127.0.0.1:${port}/`).catch(() => undefined))?.status === 200, 'the worker to answer')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
  t.same(cli.events.filter((e) => e.level < 40), [], 'no info line')
})

/** Whether the process handles `signal` (its bit in /proc/<pid>/status SigCgt). */
function catches (pid: number, signal: number): boolean {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const mask = BigInt('0x' + /SigCgt:\s*([0-9a-f]+)/.exec(status)![1])
  return ((mask >> BigInt(signal - 1)) & 1n) === 1n
}

t.test('a SIGTERM while the config is still loading stops cleanly, before any fork', async (t) => {
  const port = await freePort()
  const dir = t.testdir()
  const go = path.join(dir, 'go')
  fs.writeFileSync(path.join(dir, 'cluster.config.mjs'), configWaitingFor(go, { app: fixture('apps/http.js'), workers: 1, env: { PORT: String(port) } }))
  const cli = startCli(t, [], { cwd: dir })
  // SIGTTIN (21): caught by cluster-run alone (not by the test runner's preload),
  // so once it is, cluster-run's handlers are in place
  await until(() => catches(cli.child.pid!, 21), 'the signal handlers', 30_000)
  cli.signal('SIGTERM')
  // the config finishes loading only now: the signal surely came while it loaded
  fs.writeFileSync(go, '')
  t.equal(await cli.exited, 0)
  t.equal(cli.workerPids().length, 0, 'nothing was forked')
  t.match(cli.events.find((e) => e.event === 'shutdown.complete'), { signal: 'SIGTERM', exitCode: 0 })
})
