// A run() handle listener that calls back into the handle (scale, reload, stop)
// from inside an event never sees a half-made pass: its call is queued and handled
// once the pass that emitted the event is complete.
import t, { type Test } from 'tap'
import { run, type ClusterHandle } from 'cluster-run'
import { fixture, alive, isolateControlSockets, FILE_TIMEOUT_MS, SLOW_BOOT } from './helpers/cli.js'
import { freePort, until } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

isolateControlSockets(t)

async function start (t: Test, workers: number): Promise<ClusterHandle> {
  const port = await freePort()
  const cluster = await run({ app: fixture('apps/http.js'), workers, ...SLOW_BOOT, env: { PORT: String(port) }, log: { level: 'silent' } })
  t.teardown(async () => {
    const pids = cluster.workers().map((w) => w.pid)
    await cluster.stop()
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
  return cluster
}

const serving = (cluster: ClusterHandle) => cluster.workers().filter((w) => w.state !== 'draining')
const settled = (cluster: ClusterHandle, n: number) => {
  const s = serving(cluster)
  return s.length >= n && s.every((w) => w.state === 'ready')
}

t.test('scale(3) from a worker.fork listener after a crash: three ready workers, one per slot', async (t) => {
  const cluster = await start(t, 2)
  let asked = false
  cluster.on('worker.fork', () => {
    if (asked) return
    asked = true
    cluster.scale(3)
  })
  process.kill(cluster.workers()[0].pid, 'SIGKILL')
  await until(() => asked && settled(cluster, 3), 'the cluster to settle on 3 ready workers', SLOW_BOOT.readyTimeoutMs)
  // Every fork of a settled cluster is already reported: nothing more is coming.
  const ids = serving(cluster).map((w) => w.workerId)
  t.same(ids, [0, 1, 2], 'one worker in each of the slots 0, 1, 2, not two in slot 0')
})

t.test('stop() from a worker.fork listener while scaling up: nothing forked after it, the cluster exits 0', async (t) => {
  const cluster = await start(t, 1)
  const forks: number[] = []
  let stopped = false
  cluster.on('worker.fork', (e: { pid: number }) => {
    forks.push(e.pid)
    if (stopped) return
    stopped = true
    void cluster.stop()
  })
  const afterStop: string[] = []
  cluster.on('shutdown.start', () => cluster.on('worker.fork', () => afterStop.push('fork')))
  cluster.scale(3)
  t.equal(await cluster.exited, 0, 'the cluster stopped cleanly')
  t.same(afterStop, [], 'no worker was forked once the stop began')
  t.equal(forks.length, 2, 'the two forks of that pass were made, and stopped with the rest')
  for (const pid of forks) await until(() => !alive(pid), `worker ${pid} to exit`)
})

t.test('scale(1) from a worker.ready listener during a reload: the reload completes with one new worker', async (t) => {
  const cluster = await start(t, 2)
  let asked = false
  cluster.on('worker.ready', (e: { generation: number }) => {
    if (asked || e.generation !== 1) return
    asked = true
    cluster.scale(1)
  })
  t.equal(await cluster.reload(), 'complete')
  await until(() => serving(cluster).length === 1, 'one serving worker')
  t.match(serving(cluster), [{ workerId: 0, state: 'ready', generation: 1 }])
})

t.test('reload() from a worker.exit listener: queued behind nothing, it replaces every worker once', async (t) => {
  const cluster = await start(t, 2)
  const outcomes: Promise<string>[] = []
  cluster.on('worker.exit', (e: { expected: boolean }) => {
    if (!e.expected && outcomes.length === 0) outcomes.push(cluster.reload())
  })
  process.kill(cluster.workers()[1].pid, 'SIGKILL')
  await until(() => outcomes.length === 1, 'the listener to ask for a reload')
  t.equal(await outcomes[0], 'complete')
  await until(() => settled(cluster, 2) && serving(cluster).length === 2, 'two serving workers')
  t.same(serving(cluster).map((w) => [w.workerId, w.generation]), [[0, 1], [1, 1]], 'each slot has one worker of the new generation')
})

t.test('stop() from a worker.exit listener: no restart, exit 0', async (t) => {
  const cluster = await start(t, 2)
  const events: string[] = []
  cluster.on('event', (e: { event: string }) => events.push(e.event))
  cluster.once('worker.exit', () => { void cluster.stop() })
  process.kill(cluster.workers()[0].pid, 'SIGKILL')
  t.equal(await cluster.exited, 0)
  const stopAt = events.indexOf('shutdown.start')
  t.ok(stopAt > 0, 'the stop began')
  t.notOk(events.slice(stopAt).includes('worker.fork'), 'nothing forked after the stop')
})
