// schedulingPolicy 'reuseport': each worker accepts on a SO_REUSEPORT socket of its
// slot, which the primary keeps; nothing is reset by a reload, a scale-down or a
// crash, with net.ipv4.tcp_migrate_req at 0 or 1 (set in a network namespace of the
// test's own); where Node or the platform lacks it, the cluster runs 'rr' and says so.
import t, { type Test } from 'tap'
import { spawn, execFile } from 'node:child_process'
import { startCli, watchCli, fixture, command, controlHome, CLI, FILE_TIMEOUT_MS, type LogEvent } from './helpers/cli.js'
import { reapLater } from './helpers/reap.js'
import { get, freePort, until } from './helpers/http.js'
import { reusePortSupport } from '../lib/common/reuseport.js'
import { startLoad } from '../bench/lib/client.js'

t.setTimeout(FILE_TIMEOUT_MS)

const APP = fixture('apps/http.js')
const support = reusePortSupport(process.version, process.platform)

function check (args: string[]): Promise<{ code: number, stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '--check'], { env: { ...process.env } }, (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }))
  })
}

t.test('--check prints the policy that will run here', async (t) => {
  const { code, stdout } = await check([APP, '--scheduling-policy', 'reuseport'])
  t.equal(code, 0)
  const config = JSON.parse(stdout)
  if (support.supported) {
    t.equal(config.schedulingPolicy, 'reuseport', `Node ${process.version} on ${process.platform} runs reuseport`)
    t.notOk(config.warnings?.some((w: { key: string }) => w.key === 'schedulingPolicy'), 'and warns of nothing')
  } else {
    t.equal(config.schedulingPolicy, 'rr', `Node ${process.version} on ${process.platform} falls back to rr`)
    t.match(config.warnings, [{ key: 'schedulingPolicy', asked: 'reuseport', runs: 'rr', message: /cannot run here: .*running "rr"/ }])
  }
})

t.test('every worker listens on a socket of its own: all accept, none takes the lion\'s share, status and /metrics count them', async (t) => {
  const port = await freePort()
  const metricsPort = await freePort()
  const home = controlHome(t)
  const cli = startCli(t, [APP, '--workers', '4', '--scheduling-policy', 'reuseport', '--metrics-port', String(metricsPort)], { env: { PORT: String(port), CLUSTER_RUN_HOME: home } })
  await cli.untilReady(4, 60_000)
  const start = await cli.waitFor('primary.start')
  if (!support.supported) {
    t.equal(start.schedulingPolicy, 'rr', 'fell back to rr')
    t.ok(cli.events.some((e) => e.event === 'config.warning' && e.key === 'schedulingPolicy'), 'and said why at start')
    t.equal((await get(`http://127.0.0.1:${port}/`)).status, 200, 'and serves')
    return
  }
  t.equal(start.schedulingPolicy, 'reuseport')
  t.type(start.tcpMigrateReq, 'boolean', 'primary.start says whether the kernel moves a closing socket\'s queue')
  const listening = cli.events.filter((e) => e.event === 'worker.listening')
  t.same(listening.map((e) => e.address).sort(), Array(4).fill(`127.0.0.1:${port}`), 'worker.listening for each worker, with the address it is bound to')

  // each request on a connection of its own: the kernel picks the socket by a hash of the connection's addresses
  const CONNECTIONS = 400
  const load = await startLoad({ port, keepAlive: false, connections: 8, amount: CONNECTIONS, timeoutS: 30 }).done
  t.equal(load.ok, CONNECTIONS, 'every request answered')

  const status = await until(async () => {
    const ran = await command(home, ['status', '--json'])
    const s = JSON.parse(ran.stdout)
    const total = s.members.reduce((n: number, m: { accepted: number | null }) => n + (m.accepted ?? 0), 0)
    return total >= CONNECTIONS ? s : undefined
  }, 'the heartbeats to count every connection')
  for (const m of status.members) {
    t.same(m.listening, [`127.0.0.1:${port}`], `status: worker ${m.workerId} listens on the port`)
    // an even share is 100; a hash spreads 400 connections within ±50 with near certainty
    t.ok(m.accepted >= 50 && m.accepted <= 150, `worker ${m.workerId} accepted ${m.accepted as number} of ${CONNECTIONS}`)
  }
  const metrics = await get(`http://127.0.0.1:${metricsPort}/metrics`)
  for (const m of status.members) {
    t.match(metrics.body, new RegExp(`^cluster_run_worker_connections_accepted_total\\{worker="${m.workerId as number}"\\} ${m.accepted as number}$`, 'm'), `/metrics: worker ${m.workerId} accepted`)
  }
})

t.test('a worker that crashed is stood in for: the connections its socket queues are served before its restart', async (t) => {
  if (!support.supported) return t.pass(`not on Node ${process.version}: ${support.reason}`)
  const port = await freePort()
  const home = controlHome(t)
  const config = `export default ${JSON.stringify({ app: APP, workers: 3, schedulingPolicy: 'reuseport', restartBackoff: { initialMs: 120_000, jitter: 0 } })}`
  const dir = t.testdir({ 'cluster-run.config.mjs': config })
  const cli = startCli(t, ['--config', `${dir}/cluster-run.config.mjs`], { env: { PORT: String(port), CLUSTER_RUN_HOME: home } })
  await cli.untilReady(3, 60_000)
  const victim = cli.events.find((e) => e.event === 'worker.ready')!
  process.kill(victim.pid, 'SIGKILL')
  await cli.waitFor('worker.restart', (e) => e.workerId === victim.workerId)
  // without a stand-in, a third of new connections would wait in the dead worker's queue for two minutes
  const load = await startLoad({ port, keepAlive: false, connections: 6, amount: 300, timeoutS: 20 }).done
  t.equal(load.ok, 300, 'every request answered, none waited for the restart')
  t.equal(load.timeouts, 0)
  const pids = new Set<number>()
  for (let i = 0; i < 60; i++) pids.add((await get(`http://127.0.0.1:${port}/`, { agent: false })).json().pid)
  t.notOk(pids.has(victim.pid), 'the dead worker answered nothing')
  t.equal(pids.size, 2, 'the two live workers answered')
})

t.test('recycles under new-connection load: the successor listens on the slot\'s socket, and no request fails', async (t) => {
  if (!support.supported) return t.pass(`not on Node ${process.version}: ${support.reason}`)
  const port = await freePort()
  const config = `export default ${JSON.stringify({ app: APP, workers: 3, schedulingPolicy: 'reuseport', maxRequests: 150, maxRequestsJitter: 50 })}`
  const dir = t.testdir({ 'cluster-run.config.mjs': config })
  const cli = startCli(t, ['--config', `${dir}/cluster-run.config.mjs`], { env: { PORT: String(port), CLUSTER_RUN_HOME: controlHome(t) } })
  await cli.untilReady(3, 60_000)
  // each request on a connection of its own, on schedule, no retry: a reset or a refusal fails it
  const load = await startLoad({ port, keepAlive: false, rate: 200, amount: 1600, timeoutS: 20 }).done
  t.equal(load.failed, 0, `no request failed (${JSON.stringify(load.errorKinds)})`)
  t.equal(load.ok, 1600, 'every request answered')
  const recycles = cli.events.filter((e) => e.event === 'worker.recycle')
  t.ok(recycles.length >= 6, `workers recycled under the load (${recycles.length})`)
})

t.test('a worker whose event loop is blocked is stood in for once it misses three beats: what the kernel queues for it is served long before a hang-kill', async (t) => {
  if (!support.supported) return t.pass(`not on Node ${process.version}: ${support.reason}`)
  const port = await freePort()
  // the default heartbeatTimeoutMs (30 s): beats every second, the hang-kill after 30 s
  const cli = startCli(t, [APP, '--workers', '3', '--scheduling-policy', 'reuseport'], { env: { PORT: String(port), CLUSTER_RUN_HOME: controlHome(t) } })
  await cli.untilReady(3, 60_000)
  const victim = cli.events.find((e) => e.event === 'worker.ready')!
  process.kill(victim.pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(victim.pid, 'SIGCONT') } catch {} })
  // a third of the connections hash to its socket; without a stand-in they wait 30 s for the hang-kill
  const load = await startLoad({ port, keepAlive: false, connections: 6, amount: 300, timeoutS: 20 }).done
  t.equal(load.ok, 300, 'every request answered')
  t.equal(load.timeouts, 0, 'none waited for the hang-kill')
  t.notOk(cli.events.some((e) => e.event === 'worker.hung'), 'the stopped worker was not killed meanwhile')
  process.kill(victim.pid, 'SIGCONT')
  const pids = new Set<number>()
  await until(async () => {
    pids.add((await get(`http://127.0.0.1:${port}/`, { agent: false })).json().pid)
    return pids.has(victim.pid)
  }, 'the worker, running again, to answer on its own socket')
  t.pass('it answers again')
})

t.test('a port another cluster listens on with SO_REUSEPORT is in use: the second exits 3 and takes none of the first\'s connections', async (t) => {
  const port = await freePort()
  const args = [APP, '--workers', '2', '--scheduling-policy', 'reuseport']
  const first = startCli(t, args, { env: { PORT: String(port), CLUSTER_RUN_HOME: controlHome(t) } })
  await first.untilReady(2, 60_000)
  const second = startCli(t, args, { env: { PORT: String(port), CLUSTER_RUN_HOME: controlHome(t) } })
  // SO_REUSEPORT lets a process of the same user bind beside it: the kernel would split the port between the two
  // a deadline for a hang, not a speed (before the fix, it became ready and served half the port)
  const ended = await second.untilReady(2, 60_000).then(() => 'both workers ready', () => Promise.race([second.exited, new Promise((resolve) => setTimeout(resolve, 5_000, 'neither ready nor exited'))]))
  t.equal(ended, 3, 'a boot failure, as for any port in use')
  t.match(second.events.find((e) => e.event === 'boot.failed'), { cause: 'listen-failed', code: 'EADDRINUSE', address: `127.0.0.1:${port}` })
  t.notOk(second.events.some((e) => e.event === 'worker.ready'), 'none of its workers became ready')
  const mine = new Set(first.workerPids())
  for (let i = 0; i < 20; i++) {
    const pid = (await get(`http://127.0.0.1:${port}/`, { agent: false })).json().pid
    t.ok(mine.has(pid), `connection ${i} answered by the first cluster (pid ${pid as number})`)
  }
})

interface DrillResult { ops?: string[], sent?: number, ok?: number, failed?: number, errorKinds?: Record<string, number>, error?: string }

/** The churn drill in a network namespace of its own, with net.ipv4.tcp_migrate_req set there. */
async function drill (t: Test, policy: string, migrate: 0 | 1, ops: string): Promise<DrillResult> {
  const script = `ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=${migrate} && exec "$0" "$@"`
  const child = spawn('unshare', ['--net', 'sh', '-c', script, process.execPath, fixture('churn-drill.mjs'), CLI, APP, policy, '4', ops, '300'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const cli = watchCli(t, child)
  void cli.waitFor('primary.start', () => true, 120_000).then((e: LogEvent) => reapLater(e.pid), () => {})
  const result = await cli.waitFor('drill.result', () => true, 280_000)
  return result as DrillResult
}

const OPS = 'reload,scale:2,scale:4,reload,scale:1,scale:3,scale:4'

for (const migrate of [0, 1] as const) {
  t.test(`new connections through reloads and scale-downs, tcp_migrate_req=${migrate}: none reset, refused or timed out`, async (t) => {
    if (!support.supported) return t.pass(`not on Node ${process.version}: ${support.reason}`)
    const result = await drill(t, 'reuseport', migrate, OPS)
    t.notOk(result.error, 'the drill ran to its end')
    t.same(result.ops, OPS.split(','), 'every operation done')
    t.ok((result.sent ?? 0) > 300, `${result.sent ?? 0} requests sent`)
    t.equal(result.failed, 0, `failed: ${JSON.stringify(result.errorKinds)}`)
  })
}
