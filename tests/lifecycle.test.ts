// Deploys and shutdowns without a dropped request: drain, reload, scaling.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import http from 'node:http'
import { spawn } from 'node:child_process'
import { startCli, watchCli, controlHome, fixture, alive, CLI, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { get, freePort, keepAliveAgent, until } from './helpers/http.js'
import { startLoad } from './helpers/load.js'

t.setTimeout(FILE_TIMEOUT_MS)

async function startReady (t: Test, args: string[], workers: number, env: Record<string, string> = {}, cwd?: string) {
  const port = await freePort()
  const cli = startCli(t, args, { env: { PORT: String(port), ...env }, cwd })
  await cli.untilReady(workers)
  return { cli, port, url: `http://127.0.0.1:${port}` }
}

t.test('SIGHUP under keep-alive load: 0 errors, 0 non-2xx, every worker replaced', async (t) => {
  const { cli, url } = await startReady(t, [fixture('apps/lifecycle.js'), '-w', '4'], 4)
  const before = new Set(cli.workerPids())
  const load = startLoad(`${url}/`, { connections: 20 })
  cli.signal('SIGHUP')
  const complete = await cli.waitFor('reload.complete', undefined, 60_000)
  const result = await load.stop()
  t.comment(JSON.stringify(result))
  t.ok(result.requests > 100, `load ran (${result.requests} requests)`)
  t.equal(result.errors, 0, 'no request failed')
  t.equal(result.non2xx, 0, 'no non-2xx response')
  t.equal(result.timeouts, 0, 'no timeout')
  t.match(complete, { generation: 1, durationMs: Number })
  const after = cli.events.filter((e) => e.event === 'worker.ready' && e.generation === 1).map((e) => e.pid)
  t.equal(after.length, 4, '4 new workers became ready')
  t.ok(after.every((pid) => !before.has(pid)), 'every worker pid changed')
  for (const pid of before) await until(() => !alive(pid), `old worker ${pid} to exit`)
  // the old workers drained: expected exits, nothing counted as a crash
  t.equal(cli.events.filter((e) => e.event === 'worker.exit' && !e.expected).length, 0)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('SIGTERM with requests in flight: all complete with 200 and Connection: close', async (t) => {
  const { cli, url } = await startReady(t, [fixture('apps/lifecycle.js'), '-w', '2'], 2)
  const agent = keepAliveAgent(t)
  // each answers once its worker drains: surely in flight when the drain begins
  const slow = Array.from({ length: 4 }, () => get(`${url}/slow?drain=1`, { agent }))
  await until(() => cli.events.filter((e) => e.event === 'app.slow-start').length === 4, 'the slow requests to start')
  cli.signal('SIGTERM')
  const replies = await Promise.all(slow)
  t.same(replies.map((r) => r.status), [200, 200, 200, 200], 'every in-flight request completed')
  t.ok(replies.every((r) => r.headers.connection === 'close'), 'each response told the keep-alive client to close')
  t.equal(await cli.exited, 0)
  const cleanups = cli.events.filter((e) => e.event === 'app.cleanup').length
  t.equal(cleanups, 2, 'onShutdown hooks ran in both workers')
  t.match(cli.events.find((e) => e.event === 'shutdown.complete'), { signal: 'SIGTERM', exitCode: 0, killed: 0 })
  t.ok(cli.events.some((e) => e.event === 'worker.drain'), 'worker.drain is logged')
})

t.test('Ctrl-C with an app that exits on its own SIGINT mid-download: the exit says what it cut, and the shutdown exits 1', async (t) => {
  const port = await freePort()
  // a process group of its own, as a terminal's: Ctrl-C reaches the primary and the workers
  const cli = watchCli(t, spawn(process.execPath, [CLI, fixture('apps/exit-on-sigint.js'), '-w', '1'], {
    env: { ...process.env, PORT: String(port), CLUSTER_RUN_HOME: controlHome(t) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  }))
  await cli.untilReady(1)
  // 400 chunks, one every 50 ms: the Ctrl-C on the first one lands mid-download however slow the machine
  const download = new Promise<{ bytes: number, complete: boolean }>((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}/download?chunks=400`, (res) => {
      let bytes = 0
      res.on('data', (chunk: Buffer) => {
        if (bytes === 0) process.kill(-cli.child.pid!, 'SIGINT')
        bytes += chunk.length
      })
      res.on('close', () => resolve({ bytes, complete: res.complete }))
    }).on('error', reject)
  })
  const { bytes, complete } = await download
  t.notOk(complete, `the download was cut (${bytes} of ${400 * 1024} bytes)`)
  t.equal(await cli.exited, 1, 'the shutdown exits 1: work was cut')
  // the worker heard the Ctrl-C itself, maybe before the primary did
  t.match(cli.events.find((e) => e.event === 'worker.drain'), { reason: /^(shutdown|signal)$/ })
  t.match(cli.events.find((e) => e.event === 'worker.exit'), { level: 40, reason: 'drain-cut', cause: 'shutdown', inflight: 1, connections: 1 })
  t.match(cli.events.find((e) => e.event === 'shutdown.complete'), { exitCode: 1, killed: 0, cut: 1 })
})

t.test('an idle keep-alive connection is not reset: its next request is answered with Connection: close', async (t) => {
  const { cli, url } = await startReady(t, [fixture('apps/lifecycle.js'), '-w', '1'], 1)
  const agent = keepAliveAgent(t, { maxSockets: 1 })
  const first = await get(`${url}/`, { agent })
  t.equal(first.headers.connection, 'keep-alive')
  // A long request on another connection keeps the worker draining meanwhile: it is
  // answered once the test creates `done`.
  const done = path.join(t.testdir(), 'done')
  const held = get(`${url}/slow?until=${encodeURIComponent(done)}`)
  await until(() => cli.events.some((e) => e.event === 'app.slow-start'), 'the long request to start')
  cli.signal('SIGTERM')
  await cli.waitFor('worker.drain')
  const onIdleSocket = await get(`${url}/slow?ms=100`, { agent })
  t.equal(onIdleSocket.status, 200, 'the request on the idle keep-alive socket was served')
  t.equal(onIdleSocket.headers.connection, 'close')
  fs.writeFileSync(done, '')
  t.equal((await held).status, 200)
  t.equal(await cli.exited, 0)
})

t.test('a second SIGTERM kills at once; a worker over shutdownTimeoutMs is killed and logged', async (t) => {
  const { cli, url } = await startReady(t, [fixture('apps/lifecycle.js'), '-w', '1'], 1)
  const stuck = get(`${url}/slow?ms=30000`).catch((e) => e)
  await until(() => cli.events.some((e) => e.event === 'app.slow-start'), 'the long request to start')
  cli.signal('SIGTERM')
  await cli.waitFor('worker.drain')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 1, 'exit 1: a worker had to be killed')
  t.match(cli.events.find((e) => e.event === 'worker.exit'), { reason: 'drain-timeout', signal: 'SIGKILL' })
  t.match(cli.events.filter((e) => e.event === 'shutdown.start')[1], { fast: true })
  t.type(await stuck, Error)
})

t.test('shutdownTimeoutMs: a worker still busy at the deadline is killed, exit 1', async (t) => {
  const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: fixture('apps/lifecycle.js'), workers: 1, shutdownTimeoutMs: 500 }) })
  const { cli, url } = await startReady(t, [], 1, {}, dir)
  const stuck = get(`${url}/slow?ms=30000`).catch((e) => e)
  await until(() => cli.events.some((e) => e.event === 'app.slow-start'), 'the long request to start')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 1)
  const killed = cli.events.find((e) => e.event === 'worker.killed')
  t.match(killed, { workerId: 0 })
  // the worker ends what is still open a margin (200 ms here) before the primary's SIGKILL would
  t.ok(killed!.afterMs >= 300, `ended at the deadline (${killed!.afterMs} ms)`)
  t.type(await stuck, Error)
})

t.test('a reload onto an app that fails at boot aborts; the old workers keep serving', async (t) => {
  const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: fixture('apps/lifecycle.js'), workers: 2 }) })
  const { cli, url } = await startReady(t, [], 2, {}, dir)
  const before = cli.workerPids()
  // the broken build also asks for a third worker: that slot's worker fails too
  fs.writeFileSync(path.join(dir, 'cluster.config.json'), JSON.stringify({ app: fixture('apps/boot-throw.js'), workers: 3 }))
  cli.signal('SIGHUP')
  const aborted = await cli.waitFor('reload.aborted')
  t.match(aborted.reason, /before it was ready/)
  t.ok(aborted.stderr.join('\n').includes('DATABASE_URL'), 'the abort shows the new worker\'s stderr')
  const replies = await Promise.all(Array.from({ length: 6 }, () => get(`${url}/`)))
  t.ok(replies.every((r) => r.status === 200 && before.includes(r.json().pid)), 'the old workers answer')
  t.notOk(cli.events.some((e) => e.event === 'crash-rate.exceeded' || e.event === 'worker.restart'), 'nothing counted as a crash')

  // The reload rolled back: an old worker that crashes now comes back as an old one.
  const victim = before[0]
  process.kill(victim, 'SIGKILL')
  const back = await cli.waitFor('worker.ready', (e) => !before.includes(e.pid) && e.generation === 0)
  t.ok(back, 'the crashed slot restarted with the config that ran before the reload')
  t.equal(cli.events.filter((e) => e.event === 'worker.ready' && e.generation === 0).length, 3)
  const serving = new Set((await Promise.all(Array.from({ length: 6 }, () => get(`${url}/`)))).map((r) => r.json().pid))
  t.equal(serving.size, 2, 'still 2 workers, not the 3 of the aborted config')

  // An invalid config aborts too, with the validation errors, before anything is forked.
  fs.writeFileSync(path.join(dir, 'cluster.config.json'), JSON.stringify({ app: fixture('apps/lifecycle.js'), workers: -1 }))
  const forks = cli.workerPids().length
  cli.signal('SIGHUP')
  const invalid = await cli.waitFor('reload.aborted', (e) => e.reason === 'invalid configuration')
  t.match(invalid.issues.join('\n'), /workers/)
  t.equal(cli.workerPids().length, forks, 'no worker forked for an invalid config')

  // A good config applies, with its new worker count.
  fs.writeFileSync(path.join(dir, 'cluster.config.json'), JSON.stringify({ app: fixture('apps/lifecycle.js'), workers: 3, env: { GENERATION: 'two' } }))
  cli.signal('SIGHUP')
  const complete = await cli.waitFor('reload.complete', undefined, 60_000)
  t.equal(complete.generation, 2, 'a generation of its own, not the rolled-back one\'s')
  const gens = new Set<string>()
  const pids = new Set<number>()
  for (let i = 0; i < 12; i++) {
    const r = (await get(`${url}/`)).json()
    gens.add(r.generation)
    pids.add(r.pid)
  }
  t.same([...gens], ['two'], 'every worker runs with the new env')
  t.equal(pids.size, 3, 'the new worker count applied')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('reloads never overlap: a SIGHUP during a reload is queued once', async (t) => {
  const { cli } = await startReady(t, [fixture('apps/lifecycle.js'), '-w', '2'], 2)
  cli.signal('SIGHUP')
  await cli.waitFor('reload.start')
  cli.signal('SIGHUP')
  await cli.waitFor('reload.queued')
  // (signals sent back to back may merge into one: the third waits for the second's effect)
  cli.signal('SIGHUP')
  await cli.waitFor('reload.ignored')
  await cli.waitFor('reload.complete', (e) => e.generation === 2, 60_000)
  t.equal(cli.events.filter((e) => e.event === 'reload.start').length, 2, 'two reloads ran, one after the other')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('SIGTTIN / SIGTTOU scale under load with 0 failed requests, never below 1', async (t) => {
  const { cli, url } = await startReady(t, [fixture('apps/lifecycle.js'), '-w', '2'], 2)
  const load = startLoad(`${url}/`, { connections: 10 })
  cli.signal('SIGTTIN')
  t.match(await cli.waitFor('scale'), { from: 2, to: 3 })
  await cli.waitFor('worker.ready', (e) => e.workerId === 2)
  cli.signal('SIGTTOU')
  await cli.waitFor('scale', (e) => e.to === 2)
  const drained = await cli.waitFor('worker.exit', (e) => e.workerId === 2)
  t.match(drained, { expected: true, reason: 'drained' }, 'the highest slot was drained')
  cli.signal('SIGTTOU')
  await cli.waitFor('scale', (e) => e.to === 1)
  await cli.waitFor('worker.exit', (e) => e.workerId === 1)
  cli.signal('SIGTTOU')
  const result = await load.stop()
  t.comment(JSON.stringify(result))
  t.ok(result.requests > 100, 'load ran')
  t.equal(result.errors, 0, 'no failed request')
  t.equal(result.non2xx, 0)
  t.equal((await get(`${url}/`)).status, 200)
  t.equal(cli.events.filter((e) => e.event === 'scale').length, 3, 'no scale below 1')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('with the middleware, a real drain flips readiness to 503 and refuses new requests with Connection: close', async (t) => {
  const { cli, url } = await startReady(t, [fixture('apps/guarded.js'), '-w', '1'], 1)
  const agent = keepAliveAgent(t, { maxSockets: 1 })
  const second = keepAliveAgent(t, { maxSockets: 1 })
  const ready = await get(`${url}/readyz`, { agent })
  t.equal(ready.status, 200, 'ready before the drain')
  t.equal((await get(`${url}/`, { agent: second })).status, 200, 'a second keep-alive connection, idle from now on')
  t.equal((await get(`${url}/healthz`)).status, 200)
  // in flight until the test creates `done`: the worker drains meanwhile
  const done = path.join(t.testdir(), 'done')
  const held = get(`${url}/slow?until=${encodeURIComponent(done)}`)
  await until(() => cli.events.some((e) => e.event === 'app.slow-start'), 'the long request to start')
  cli.signal('SIGTERM')
  await cli.waitFor('worker.drain')
  // The drain message is on its way to the worker: poll readiness on the same
  // keep-alive socket (200s keep it open) until the worker answers that it drains.
  const during = await until(async () => {
    const reply = await get(`${url}/readyz`, { agent })
    return reply.status === 503 ? reply : undefined
  }, 'readiness to turn 503')
  t.equal(during.status, 503, 'readiness is 503 while draining')
  t.match(during.json(), { status: 'draining' })
  const refused = await get(`${url}/`, { agent: second })
  t.equal(refused.status, 503, 'a new request on an idle connection is refused, not cut off')
  t.ok(Number(refused.headers['retry-after']) > 0, 'with Retry-After')
  t.equal(refused.headers.connection, 'close')
  t.equal(during.headers.connection, 'close')
  fs.writeFileSync(done, '')
  t.equal((await held).status, 200, 'the request in flight completed')
  t.equal(await cli.exited, 0)
})
