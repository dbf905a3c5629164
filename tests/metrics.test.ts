// Prometheus metrics and cluster-level health from the primary, on a port of its own.
import t from 'tap'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { run } from 'cluster-run'
import { startCli, fixture, isolateControlSockets, type Cli, FILE_TIMEOUT_MS, SLOW_BOOT } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

isolateControlSockets(t)

/** The value of one series (name + exact label set, as printed), or undefined. */
function series (text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

function all (text: string, name: string): Array<{ labels: string, value: number }> {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`)).map((l) => ({ labels: l.slice(l.indexOf('{') + 1, l.indexOf('}')), value: Number(l.slice(l.lastIndexOf(' ') + 1)) }))
}

t.test('a scrape with 4 workers: per-worker series whose sums match the handle, the apps\' counters summed', async (t) => {
  const port = await freePort()
  const metricsPort = await freePort()
  const cluster = await run({ app: fixture('apps/metrics.js'), workers: 4, ...SLOW_BOOT, env: { PORT: String(port) }, log: { level: 'silent' }, metrics: { port: metricsPort } })
  t.teardown(() => cluster.stop())
  const url = `http://127.0.0.1:${metricsPort}`
  for (let i = 0; i < 40; i++) await get(`http://127.0.0.1:${port}/a`)
  // every worker has beaten since the last request: the handle's figures are final
  await until(() => cluster.status().members.reduce((n, m) => n + (m.requests ?? 0), 0) === 40, 'heartbeats carrying all 40 requests')
  const reply = await get(`${url}/metrics`)
  t.equal(reply.status, 200)
  t.match(reply.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = reply.body
  const status = cluster.status()
  t.equal(series(text, 'cluster_run_workers_desired'), 4)
  t.equal(series(text, 'cluster_run_workers', 'state="ready"'), 4)
  t.equal(series(text, 'cluster_run_workers', 'state="draining"'), 0)
  const requests = all(text, 'cluster_run_worker_requests_total')
  t.same(requests.map((r) => r.labels).sort(), ['worker="0"', 'worker="1"', 'worker="2"', 'worker="3"'], 'one series per slot')
  t.equal(requests.reduce((n, r) => n + r.value, 0), 40, 'requests summed over the workers: 40, as the handle says')
  for (const m of status.members) {
    t.equal(series(text, 'cluster_run_worker_requests_total', `worker="${m.workerId}"`), m.requests, `worker ${m.workerId}: the handle's request count`)
    t.ok((series(text, 'cluster_run_worker_rss_bytes', `worker="${m.workerId}"`) ?? 0) > 10e6, 'an RSS from its heartbeat')
  }
  t.equal(series(text, 'app_hits_total', 'route="a"'), 40, 'the app\'s own counter, summed over the 4 workers')
  t.equal(series(text, 'app_config_version'), 7, 'an aggregator: "first" gauge is not multiplied by 4')
  t.equal(series(text, 'cluster_run_scrape_workers_missing'), 0)
  t.ok((series(text, 'cluster_run_primary_process_resident_memory_bytes') ?? 0) > 0, 'the primary\'s own process figures')
  t.equal(series(text, 'cluster_run_reloads_total', 'outcome="complete"'), 0)
  t.equal(await cluster.reload(), 'complete')
  await until(() => cluster.status().exits.drained === 4, 'the old workers to exit')
  const after = (await get(`${url}/metrics`)).body
  t.equal(series(after, 'cluster_run_reloads_total', 'outcome="complete"'), 1)
  t.equal(series(after, 'cluster_run_generation'), 1)
  t.equal(series(after, 'cluster_run_worker_exits_total', 'reason="drained"'), 4)
  t.equal((await get(`${url}/healthz`)).status, 200)
  t.equal((await get(`${url}/nope`)).status, 404)
  t.equal((await get(`${url}/metrics`, { method: 'POST' })).status, 405)
})

t.test('a SIGSTOPped worker: the scrape returns after the per-worker timeout with the others\' data, missing 1', async (t) => {
  const port = await freePort()
  const metricsPort = await freePort()
  const cluster = await run({ app: fixture('apps/metrics.js'), workers: 3, ...SLOW_BOOT, env: { PORT: String(port) }, log: { level: 'silent' }, metrics: { port: metricsPort, timeoutMs: 400 } })
  t.teardown(() => cluster.stop())
  for (let i = 0; i < 30; i++) await get(`http://127.0.0.1:${port}/a`)
  const [stopped] = cluster.workers()
  process.kill(stopped.pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(stopped.pid, 'SIGCONT') } catch {} })
  const begun = Date.now()
  const reply = await get(`http://127.0.0.1:${metricsPort}/metrics`)
  const tookMs = Date.now() - begun
  // the worker stays stopped until the SIGCONT below: an answer now did not wait for it
  t.comment(`scrape with one worker stopped: ${tookMs} ms (per-worker timeout 400 ms)`)
  t.equal(reply.status, 200, 'answered while the worker was still stopped')
  t.equal(series(reply.body, 'cluster_run_scrape_workers_missing'), 1)
  const hits = series(reply.body, 'app_hits_total', 'route="a"') ?? 0
  t.ok(hits > 0 && hits < 30, `the others' counts (${hits} of 30)`)
  t.equal(series(reply.body, 'cluster_run_workers', 'state="ready"'), 3, 'the snapshot still has every worker')
  process.kill(stopped.pid, 'SIGCONT')
  const back = await get(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(series(back.body, 'cluster_run_scrape_workers_missing'), 0)
  t.equal(series(back.body, 'app_hits_total', 'route="a"'), 30, 'all of them once it answers again')
})

async function readyz (url: string): Promise<{ status: number, body: any }> {
  const r = await get(`${url}/readyz`)
  return { status: r.status, body: r.json() }
}

t.test('/readyz: 503 while starting, 200 through a reload, 503 below minReadyWorkers, 503 from the first moment of a shutdown', async (t) => {
  const port = await freePort()
  const metricsPort = await freePort()
  const url = `http://127.0.0.1:${metricsPort}`
  // the workers call ready() once the test creates this file: they are not ready before
  const warm = path.join(t.testdir(), 'warm')
  const cli = startCli(t, [fixture('apps/ready-message.js'), '-w', '2', '--metrics-port', String(metricsPort)], {
    env: { PORT: String(port), READY_FILE: warm },
    cwd: t.testdir({ 'cluster.config.json': JSON.stringify({ readiness: 'message', minReadyWorkers: 2, restartBackoff: { initialMs: 0, jitter: 0 } }) }),
  })
  await cli.waitFor('primary.start')
  const starting = await readyz(url)
  t.equal(starting.status, 503, 'starting: not ready')
  t.match(starting.body, { status: 'not ready', reason: /^starting/ })
  t.equal((await get(`${url}/healthz`)).status, 200, 'but alive')
  fs.writeFileSync(warm, '')
  await cli.untilReady(2)
  t.match(await readyz(url), { status: 200, body: { ready: true, workers: { ready: 2, desired: 2, minReady: 2 } } })

  // through a reload, never below: every poll is 200
  cli.signal('SIGHUP')
  const seen = new Set<number>()
  while (!cli.events.some((e) => e.event === 'reload.complete')) {
    seen.add((await readyz(url)).status)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.same([...seen], [200], 'ready all through the reload')

  // a crash leaves 1 ready of minReadyWorkers 2 until its replacement is ready (here:
  // until the test lets it warm up)
  fs.rmSync(warm)
  const victim = cli.events.filter((e) => e.event === 'worker.ready' && e.generation === 1)[0].pid
  process.kill(victim, 'SIGKILL')
  await cli.waitFor('worker.exit', (e) => e.pid === victim)
  const below = await readyz(url)
  t.equal(below.status, 503)
  t.match(below.body.reason, /1 workers ready, fewer than minReadyWorkers \(2\)/)
  fs.writeFileSync(warm, '')
  await until(async () => (await readyz(url)).status === 200, 'ready again once the slot is back')

  cli.signal('SIGTERM')
  await cli.waitFor('shutdown.start')
  t.not((await readyz(url).catch(() => ({ status: 0 }))).status, 200, 'not ready once the shutdown began (or closed)')
  t.equal(await cli.exited, 0)
})

t.test('shutdownDelayMs: readiness is 503 from the moment of SIGTERM, requests keep succeeding for the delay, then the drain', async (t) => {
  const delayMs = 3000
  const port = await freePort()
  const metricsPort = await freePort()
  const url = `http://127.0.0.1:${metricsPort}`
  const cli = startCli(t, [fixture('apps/guarded.js'), '-w', '2'], {
    env: { PORT: String(port) },
    cwd: t.testdir({ 'cluster.config.json': JSON.stringify({ shutdownDelayMs: delayMs, metrics: { port: metricsPort } }) }),
  })
  await cli.untilReady(2)
  t.equal((await readyz(url)).status, 200)
  t.equal((await get(`http://127.0.0.1:${port}/readyz`)).status, 200, 'the workers\' middleware: ready')
  const signalledAt = Date.now()
  cli.signal('SIGTERM')
  await cli.waitFor('shutdown.start')
  // the primary is unready from the step that logs the start: the very next probe says so
  t.equal((await readyz(url)).status, 503, 'primary readiness 503 once the shutdown began')
  t.comment(`primary /readyz 503 ${Date.now() - signalledAt} ms after SIGTERM`)
  await until(async () => (await get(`http://127.0.0.1:${port}/readyz`)).status === 503, 'the workers\' readiness to turn 503 too')
  const workersUnreadyAt = Date.now()
  // requests keep succeeding during the delay: sent one after another until the drain
  // is logged; those answered before the drain began must all be 200
  const answered: Array<{ status: number | string, at: number }> = []
  while (!cli.events.some((e) => e.event === 'worker.drain') && answered.length < 1000) {
    const r = await get(`http://127.0.0.1:${port}/`).then((reply) => reply.status, (err: NodeJS.ErrnoException) => err.code ?? err.message)
    answered.push({ status: r, at: Date.now() })
  }
  t.match(cli.events.find((e) => e.event === 'shutdown.start'), { signal: 'SIGTERM', delayMs })
  t.equal(await cli.exited, 0)
  const drainAt = Date.parse(cli.events.find((e) => e.event === 'worker.drain')!.time)
  const startAt = Date.parse(cli.events.find((e) => e.event === 'shutdown.start')!.time)
  t.ok(drainAt - startAt >= delayMs - 100, `the drain began after the delay (${drainAt - startAt} ms)`)
  t.ok(workersUnreadyAt < drainAt, 'the workers\' readiness turned 503 before the drain began')
  const during = answered.filter((a) => a.at < drainAt)
  t.ok(during.length > 0, `${during.length} requests answered during the delay`)
  t.same(during.filter((a) => a.status !== 200), [], 'every one of them with 200')
})

t.test('a second SIGTERM during the shutdown delay starts the drain at once', async (t) => {
  const port = await freePort()
  const cli = startCli(t, [fixture('apps/http.js'), '-w', '1'], {
    env: { PORT: String(port) },
    cwd: t.testdir({ 'cluster.config.json': JSON.stringify({ shutdownDelayMs: 30_000 }) }),
  })
  await cli.untilReady(1)
  cli.signal('SIGTERM')
  await cli.waitFor('shutdown.start')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0, 'drained and exited, long before the 30 s delay')
  t.match(cli.events.find((e) => e.event === 'worker.exit'), { reason: 'drained' })
})

t.test('a metrics port in use fails at start with a clear message (exit 73), forking nothing; a bad metrics config is 78', async (t) => {
  const busy = net.createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => busy.close())
  const taken = (busy.address() as net.AddressInfo).port
  const cli: Cli = startCli(t, [fixture('apps/http.js'), '-w', '1', '--metrics-port', String(taken)], { env: { PORT: String(await freePort()) } })
  t.equal(await cli.exited, 73)
  t.match(cli.stderr(), new RegExp(`the metrics port 127\\.0\\.0\\.1:${taken} is in use; choose another metrics.port`))
  t.same(cli.workerPids(), [], 'nothing forked')

  const bad = startCli(t, [fixture('apps/http.js'), '-w', '1', '--metrics-port', 'ninety'])
  t.equal(await bad.exited, 78)
  t.match(bad.stderr(), /metrics\.port: .*given: "ninety"/)
  const extra = startCli(t, ['--check'], { cwd: t.testdir({ 'cluster.config.json': JSON.stringify({ app: fixture('apps/http.js'), metrics: { port: 9100, hots: 'x' } }) }) })
  t.equal(await extra.exited, 78)
  t.match(extra.stderr(), /metrics\.hots: unknown key/)
})
