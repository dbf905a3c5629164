// Worker health: hung workers, memory ceiling, request recycling, exit reasons.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { startCli, fixture, alive, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'
import { startLoad } from './helpers/load.js'
import autocannon from 'autocannon'

t.setTimeout(FILE_TIMEOUT_MS)

async function startWithConfig (t: Test, config: Record<string, unknown>, workers: number) {
  const port = await freePort()
  const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: fixture('apps/health.js'), env: { PORT: String(port) }, ...config }) })
  const cli = startCli(t, [], { cwd: dir })
  await cli.untilReady(workers)
  return { cli, url: `http://127.0.0.1:${port}` }
}

t.test('a worker that blocks its event loop is killed and replaced; the others keep answering', async (t) => {
  // (3 s: a healthy worker of a busy machine does not go that long without a beat)
  const timeoutMs = 3000
  const { cli, url } = await startWithConfig(t, { workers: 2, heartbeatTimeoutMs: timeoutMs }, 2)
  const pids = cli.workerPids()
  void get(`${url}/block`).catch(() => {})
  const blocked = await cli.waitFor('app.block')
  // Sent while one worker hangs: with round-robin, one of them is handed to the hung
  // worker; when it is killed, the connection must go to another worker, not be lost.
  const during = Promise.all(Array.from({ length: 4 }, () => get(`${url}/`)))
  const hung = await cli.waitFor('worker.hung')
  t.equal(hung.pid, blocked.pid, 'the worker killed as hung is the one that blocked')
  t.match(hung, { timeoutMs })
  // how soon after the timeout is the primary's own pace (it checks every timeout / 4)
  t.ok(hung.heartbeatAgeMs > timeoutMs, `not before the timeout (heartbeat age ${hung.heartbeatAgeMs} ms)`)
  const other = pids.find((p) => p !== hung.pid)
  const replies = [...await during, ...await Promise.all(Array.from({ length: 4 }, () => get(`${url}/`)))]
  t.ok(replies.every((r) => r.status === 200), 'the cluster kept answering, even the connection handed to the hung worker')
  t.ok(replies.some((r) => r.json().pid === other), 'the healthy worker answered')
  t.match(await cli.waitFor('worker.exit', (e) => e.pid === hung.pid), { reason: 'hung', signal: 'SIGKILL', expected: false })
  const replacement = await cli.waitFor('worker.ready', (e) => e.workerId === hung.workerId && e.pid !== hung.pid)
  t.ok(alive(replacement.pid), 'a replacement serves in the same slot')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('the last worker dies with a connection handed to it and others queued: every client is answered or sees an error, none waits', async (t) => {
  // One worker, blocked: the primary hands it one new connection (which it cannot
  // acknowledge) and queues the others. When it dies, Node closes the queued ones with
  // the listening socket; the handed one must not wait in that dead handle forever.
  const { cli, url } = await startWithConfig(t, { workers: 1, heartbeatTimeoutMs: 0 }, 1)
  const [pid] = cli.workerPids()
  void get(`${url}/block-exit?ms=1000`).catch(() => {})
  await cli.waitFor('app.block')
  // (a client that would wait forever is cut at a deadline far beyond the worker's 1 s)
  const settled = await Promise.all(Array.from({ length: 5 }, () => get(`${url}/`, { timeout: 30_000 }).then(
    (reply) => `status ${reply.status}`,
    (err: NodeJS.ErrnoException) => err.code ?? err.message
  )))
  t.notOk(settled.some((s) => s.includes('no answer in time')), `every client settled: ${settled.join(', ')}`)
  await cli.waitFor('worker.exit', (e) => e.pid === pid)
  await cli.waitFor('worker.ready', (e) => e.pid !== pid)
  t.equal((await get(`${url}/`)).status, 200, 'the replacement serves')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('a worker dies with a connection handed to it while the other is busy: the connection is served by the other', async (t) => {
  // Both workers blocked; worker 0 then dies, worker 1 answers once the test releases it.
  // The connection handed to worker 0 goes back to the round-robin handle, which worker 1
  // still listens through: it is served, not lost and not closed.
  const { cli, url } = await startWithConfig(t, { workers: 2, heartbeatTimeoutMs: 0 }, 2)
  const release = path.join(t.testdir(), 'release')
  const dying = get(`${url}/block-exit?ms=1000`).catch(() => null)
  const dead = await cli.waitFor('app.block')
  // (if the test fails before the release, the teardown kills the blocked worker by pid)
  const busy = get(`${url}/block?until=${encodeURIComponent(release)}`, { timeout: 120_000 })
  await cli.waitFor('app.block', (e) => e.pid !== dead.pid)
  const replies = Promise.all(Array.from({ length: 4 }, () => get(`${url}/`, { timeout: 120_000 }).then(
    (reply) => reply.status,
    (err: NodeJS.ErrnoException) => err.code ?? err.message
  )))
  await cli.waitFor('worker.exit', (e) => e.pid === dead.pid)
  fs.writeFileSync(release, '')
  t.same(await replies, [200, 200, 200, 200], 'every connection sent while both were blocked is served')
  t.equal((await busy).status, 200)
  await dying
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('a CPU flood (/heavy, 400 concurrent) gets no worker killed as hung', async (t) => {
  const { cli, url } = await startWithConfig(t, { workers: 2, heartbeatTimeoutMs: 2000 }, 2)
  const result: any = await autocannon({ url: `${url}/heavy?n=30000000`, connections: 400, amount: 400, timeout: 120 })
  t.equal(result.errors, 0, 'no errors')
  t.equal(result['2xx'], 400, 'every request answered')
  t.notOk(cli.events.some((e) => e.event === 'worker.hung'), 'no worker.hung')
  t.equal(cli.events.filter((e) => e.event === 'worker.fork').length, 2, 'no worker replaced')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('a worker over maxMemoryMb is recycled gracefully under load', async (t) => {
  const { cli, url } = await startWithConfig(t, { workers: 2, maxMemoryMb: 150, heartbeatTimeoutMs: 2000 }, 2)
  const load = startLoad(`${url}/`, { connections: 10 })
  for (let i = 0; i < 15 && !cli.events.some((e) => e.event === 'worker.recycle'); i++) {
    await get(`${url}/grow?mb=16`)
  }
  const recycle = await cli.waitFor('worker.recycle')
  t.match(recycle, { reason: 'memory', maxMemoryMb: 150 })
  t.ok(recycle.rssMb > 150)
  await cli.waitFor('worker.exit', (e) => e.pid === recycle.pid)
  const result = await load.stop()
  t.equal(result.errors, 0, 'no failed request')
  t.equal(result.non2xx, 0)
  t.match(cli.events.find((e) => e.event === 'worker.exit' && e.pid === recycle.pid), { reason: 'recycled', expected: true })
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('maxRequests: 100 recycles workers under load with 0 failed requests (with the hang check off)', async (t) => {
  const { cli, url } = await startWithConfig(t, { workers: 2, maxRequests: 100, maxRequestsJitter: 20, heartbeatTimeoutMs: 0 }, 2)
  const load = startLoad(`${url}/`, { connections: 10 })
  await until(() => cli.events.filter((e) => e.event === 'worker.exit' && e.reason === 'recycled').length >= 4, '4 recycles', 120_000)
  const result = await load.stop()
  t.comment(JSON.stringify(result))
  t.equal(result.errors, 0, 'no failed request')
  t.equal(result.non2xx, 0)
  const recycles = cli.events.filter((e) => e.event === 'worker.recycle')
  t.ok(recycles.every((e) => e.reason === 'max-requests' && e.limit >= 100 && e.limit <= 120), 'limits are 100 + up to 20 jitter')
  // the worker beats the moment it reaches its limit, so it is recycled right there, not a beat later
  t.ok(recycles.every((e) => e.requests === e.limit), `recycled at exactly the limit (${recycles.map((e) => `${e.requests}/${e.limit}`).join(', ')})`)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('exit reasons: a SIGKILL the supervisor did not send is flagged as a possible OOM kill', async (t) => {
  const { cli } = await startWithConfig(t, { workers: 1 }, 1)
  const [pid] = cli.workerPids()
  process.kill(pid, 'SIGKILL')
  t.match(await cli.waitFor('worker.exit'), { pid, reason: 'signaled', signal: 'SIGKILL', possibleOom: true, expected: false })
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('stopOnExitCodes: a worker exiting with such a code stops the cluster at once, exit 3', async (t) => {
  const { cli, url } = await startWithConfig(t, { workers: 2, stopOnExitCodes: [42] }, 2)
  await get(`${url}/exit?code=42`).catch(() => {})
  t.equal(await cli.exited, 3)
  t.match(cli.events.find((e) => e.event === 'boot.failed'), { cause: 'stop-code' })
  t.notOk(cli.events.some((e) => e.event === 'worker.restart'), 'no restart')
})

t.test('a recycle whose replacement cannot boot backs off and keeps the old worker serving', async (t) => {
  const port = await freePort()
  const dir = t.testdir({})
  const breakFile = `${dir}/break`
  const config = { app: fixture('apps/flaky-boot.js'), workers: 1, maxRequests: 20, env: { PORT: String(port), BREAK_FILE: breakFile } }
  const cfgDir = t.testdir({ 'cluster.config.json': JSON.stringify(config) })
  const cli = startCli(t, [], { cwd: cfgDir })
  const first = await cli.waitFor('worker.ready')
  ;(await import('node:fs')).writeFileSync(breakFile, '')
  const url = `http://127.0.0.1:${port}/`
  for (let i = 0; i < 25; i++) t.equal((await get(url)).json().pid, first.pid)
  await cli.waitFor('worker.recycle')
  const second = await cli.waitFor('worker.restart', (e) => e.attempt === 2)
  const firstRestart = cli.events.find((e) => e.event === 'worker.restart' && e.attempt === 1)!
  t.ok(second.delayMs > firstRestart.delayMs, `the retries back off (${firstRestart.delayMs} ms, then ${second.delayMs} ms)`)
  for (let i = 0; i < 5; i++) t.equal((await get(url)).json().pid, first.pid, 'the old worker still serves')
  ;(await import('node:fs')).rmSync(breakFile)
  const replaced = await cli.waitFor('worker.exit', (e) => e.pid === first.pid, 60_000)
  t.match(replaced, { reason: 'recycled', expected: true })
  t.not((await get(url)).json().pid, first.pid, 'a new worker serves')
  t.notOk(cli.events.some((e) => e.event === 'crash-rate.exceeded'))
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('a worker not ready within readyTimeoutMs is killed and counted as a crash: a boot failure', async (t) => {
  const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: fixture('apps/never-listens.js'), workers: 1, readyTimeoutMs: 300, maxCrashRate: { crashes: 2, windowMs: 60_000 } }) })
  const cli = startCli(t, [], { cwd: dir })
  t.equal(await cli.exited, 3)
  const exits = cli.events.filter((e) => e.event === 'worker.exit')
  t.equal(exits.length, 3, 'crashes + 1 exits trip the breaker')
  t.ok(exits.every((e) => e.reason === 'not-ready' && e.signal === 'SIGKILL' && !e.expected))
  t.ok(exits.every((e) => e.uptimeMs >= 300), 'each was given readyTimeoutMs')
  t.match(cli.events.find((e) => e.event === 'boot.failed'), { cause: 'crash-rate', lastExits: [{ reason: 'not-ready' }], message: /no worker became ready within readyTimeoutMs \(300 ms\); if it needs longer to start, raise readyTimeoutMs/ })
})
