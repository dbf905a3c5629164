// run() from code: the handle, its events, stop(); typed rejections.
import t from 'tap'
import nodeCluster from 'node:cluster'
import { run, ConfigError, ClusterError } from 'cluster-run'
import { fixture, alive, isolateControlSockets, FILE_TIMEOUT_MS, SLOW_BOOT } from './helpers/cli.js'
import { get, freePort, distinct, until } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

isolateControlSockets(t)

t.test('run() resolves once every worker listens; the handle lists workers and stops', async (t) => {
  const port = await freePort()
  const seen: string[] = []
  const started = Date.now()
  const cluster = await run({ app: fixture('apps/http.js'), workers: 2, ...SLOW_BOOT, env: { PORT: String(port) }, log: { level: 'silent' } })
  t.teardown(() => cluster.stop())
  t.comment(`ready in ${Date.now() - started} ms`)
  cluster.on('event', (e: { event: string }) => seen.push(e.event))
  const workers = cluster.workers()
  t.equal(workers.length, 2)
  t.same(workers.map((w) => w.workerId), [0, 1])
  t.ok(workers.every((w) => w.state === 'ready' && w.pid > 0))
  const pids = await distinct(`http://127.0.0.1:${port}/`, 2)
  t.same(new Set(pids), new Set(workers.map((w) => w.pid)))
  t.equal(await cluster.reload(), 'complete', 'reload() resolves once every worker was replaced')
  const serving = cluster.workers().filter((w) => w.state !== 'draining')
  t.equal(serving.length, 2)
  t.ok(serving.every((w) => w.generation === 1 && !workers.some((old) => old.pid === w.pid)), 'the serving workers are new')
  t.equal(await cluster.stop(), 0)
  t.equal(await cluster.exited, 0)
  t.ok(seen.includes('shutdown.complete'))
  for (const w of workers) t.notOk(alive(w.pid))
})

t.test('run() rejects an invalid config with a ConfigError and forks nothing', async (t) => {
  const err = await run({ app: fixture('apps/http.js'), workers: 0, schedulingPolicy: 'fifo' } as any).catch((e) => e)
  t.type(err, ConfigError)
  t.equal(err.exitCode, 78)
  t.match(err.issues.join('\n'), /workers: .*given: 0/)
  t.match(err.issues.join('\n'), /schedulingPolicy: .*given: "fifo"/)
  t.same(Object.keys(nodeCluster.workers ?? {}), [], 'no worker was forked')
})

t.test('run() rejects with a ClusterError (exit code 3) when the app fails at boot', async (t) => {
  const err = await run({ app: fixture('apps/boot-throw.js'), workers: 1, log: { level: 'silent' } }).catch((e) => e)
  t.type(err, ClusterError)
  t.equal(err.exitCode, 3)
})

t.test('readiness "message": a worker is ready only once it calls ready()', async (t) => {
  const port = await freePort()
  const cluster = await run({
    app: fixture('apps/ready-message.js'),
    workers: 2,
    ...SLOW_BOOT,
    readiness: 'message',
    env: { PORT: String(port), WARMUP_MS: '300' },
    log: { level: 'silent' },
  })
  t.teardown(() => cluster.stop())
  // run() resolved only after both called ready(): every answer is from a warm worker.
  for (let i = 0; i < 4; i++) t.equal((await get(`http://127.0.0.1:${port}/`)).json().warm, true)
  t.equal(await cluster.stop(), 0)
})

t.test('hooks run with the facts; a hook that throws does not stop the primary', async (t) => {
  const port = await freePort()
  const calls: Array<[string, any]> = []
  const cluster = await run({
    app: fixture('apps/http.js'),
    workers: 1,
    ...SLOW_BOOT,
    env: { PORT: String(port) },
    log: { level: 'silent' },
    onWorkerFork: (w) => { calls.push(['fork', w]); throw new Error('hook exploded') },
    onWorkerReady: async (w) => { calls.push(['ready', w]); throw new Error('async hook exploded') },
    onWorkerExit: (w) => calls.push(['exit', w]),
    onShutdown: (s) => calls.push(['shutdown', s]),
  })
  t.teardown(() => cluster.stop())
  t.equal((await get(`http://127.0.0.1:${port}/`)).status, 200, 'the app serves despite the throwing hooks')
  t.equal(await cluster.stop(), 0)
  t.same(calls.map(([name]) => name), ['fork', 'ready', 'shutdown', 'exit'])
  t.match(calls[0][1], { workerId: 0, pid: Number })
  t.match(calls[3][1], { workerId: 0, reason: 'drained', code: 0 })
  t.match(calls[2][1], { signal: 'stop' })
})

t.test('the handle exposes each worker\'s latest heartbeat figures', async (t) => {
  const port = await freePort()
  // (the default hang check: a worker of a busy machine may miss a short one and be killed)
  const cluster = await run({ app: fixture('apps/http.js'), workers: 1, ...SLOW_BOOT, env: { PORT: String(port) }, log: { level: 'silent' } })
  t.teardown(() => cluster.stop())
  for (let i = 0; i < 3; i++) await get(`http://127.0.0.1:${port}/`)
  const stats = await until(() => {
    const s = cluster.workers()[0]
    return s && (s.requests ?? 0) >= 3 ? s : undefined
  }, 'a heartbeat counting the requests')
  t.ok(stats.rssBytes! > 10 * 1024 * 1024, 'rss')
  t.ok(stats.heapUsedBytes! > 0, 'heap')
  t.ok(stats.eventLoopDelayMs! >= 0, 'event-loop delay')
  t.equal(stats.inflight, 0)
  t.same(Object.keys(cluster).sort(), ['config', 'exited', 'off', 'on', 'once', 'reload', 'scale', 'status', 'stop', 'workers'], 'the handle has the documented methods and nothing else')
  t.equal(await cluster.stop(), 0)
})
