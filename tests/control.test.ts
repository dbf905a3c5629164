// See and steer a running cluster from another shell: the control socket and the
// `cluster-run ls | status | reload | scale | stop` commands, with real clusters.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { run } from 'cluster-run'
import { command, startCli, fixture, alive, controlHome, type Cli, FILE_TIMEOUT_MS, SLOW_BOOT } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'
import { startLoad } from './helpers/load.js'
import { reapLater } from './helpers/reap.js'

t.setTimeout(FILE_TIMEOUT_MS)

async function cluster (t: Test, home: string, args: string[], workers: number, env: Record<string, string> = {}, cwd?: string): Promise<Cli & { port: number }> {
  const port = await freePort()
  const cli = startCli(t, args, { env: { PORT: String(port), CLUSTER_RUN_HOME: home, ...env }, cwd })
  await cli.untilReady(workers)
  return Object.assign(cli, { port })
}

/** One raw HTTP request to a unix socket. */
function raw (socketPath: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath)
    let reply = ''
    socket.setEncoding('utf8').on('data', (c: string) => { reply += c })
    socket.on('end', () => resolve(reply))
    socket.on('error', reject)
    socket.end(text)
  })
}

/** `status --json`, parsed; fails the test with the command's stderr otherwise. */
async function statusJson (home: string, ...args: string[]): Promise<any> {
  const ran = await command(home, ['status', ...args, '--json'])
  if (ran.code !== 0) throw new Error(`status exited ${ran.code}: ${ran.stderr}`)
  return JSON.parse(ran.stdout)
}

/** One request over the control socket; a request unanswered for 30 s fails (a deadline, not a speed). */
function ask (socketPath: string, method: string, route: string, body?: string): Promise<{ status: number, json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: route, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => { text += c })
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }))
    })
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${route}: no answer within 30 s`)))
    req.on('error', reject)
    req.end(body)
  })
}

t.test('ls lists two named clusters; status names the workers; the name may be left out only when one runs', async (t) => {
  const home = controlHome(t)
  const shop = await cluster(t, home, [fixture('apps/http.js'), '-w', '2', '--name', 'shop'], 2)
  const api = await cluster(t, home, [fixture('apps/http.js'), '-w', '1', '--name', 'api'], 1)
  t.match(shop.events.find((e) => e.event === 'primary.start'), { name: 'shop', controlSocket: path.join(home, 'shop.sock') })
  const ls = await command(home, ['ls'])
  t.equal(ls.code, 0)
  const lines = ls.stdout.trim().split('\n')
  t.match(lines[0], /^NAME\s+PID\s+WORKERS\s+UPTIME\s+APP$/)
  t.match(lines[1], new RegExp(`^api\\s+${api.child.pid}\\s+1/1\\s+\\d+s\\s+.*http\\.js$`))
  t.match(lines[2], new RegExp(`^shop\\s+${shop.child.pid}\\s+2/2\\s+`))
  const json = JSON.parse((await command(home, ['ls', '--json'])).stdout)
  t.match(json, [{ name: 'api', pid: api.child.pid, workers: { desired: 1, ready: 1 } }, { name: 'shop', pid: shop.child.pid }])

  const status = await command(home, ['status', 'shop'])
  t.equal(status.code, 0)
  t.match(status.stdout, new RegExp(`^shop  pid ${shop.child.pid}  rr  generation 0  up \\d+s  crashes 0 in 1m  no reload yet\\n`))
  t.match(status.stdout, /ID\s+PID\s+STATE\s+GEN\s+UPTIME\s+RESTARTS\s+RSS\s+HEAP\s+LOOP\s+CONNS\s+REQUESTS\s+INFLIGHT\s+LOG LINES/)
  for (const pid of shop.workerPids()) t.match(status.stdout, new RegExp(`\\n\\d\\s+${pid}\\s+ready\\s+0\\s+`))
  const unnamed = await command(home, ['status'])
  t.equal(unnamed.code, 64, 'two clusters: the name is needed')
  t.match(unnamed.stderr, /several clusters are running \(api, shop\): name one/)
  api.signal('SIGTERM')
  t.equal(await api.exited, 0)
  t.notOk(fs.existsSync(path.join(home, 'api.sock')), 'the socket is removed on a clean exit')
  t.equal((await statusJson(home)).name, 'shop', 'one cluster left: no name needed')
})

t.test('status answers from what the primary holds, at once, while every worker\'s loop is blocked', async (t) => {
  const home = controlHome(t)
  process.env.CLUSTER_RUN_HOME = home
  t.teardown(() => { delete process.env.CLUSTER_RUN_HOME })
  const port = await freePort()
  // no hang check: the workers are blocked on purpose, as long as the test needs
  const handle = await run({ app: fixture('apps/busy.js'), workers: 2, name: 'flood', heartbeatTimeoutMs: 0, ...SLOW_BOOT, env: { PORT: String(port) }, log: { level: 'silent' } })
  t.teardown(() => handle.stop())
  // every worker has sent its figures once
  await until(() => handle.status().members.every((m) => (m.rssBytes ?? 0) > 0), 'a heartbeat from every worker')
  // Requests that block a worker's loop until the test releases them: round-robin gives
  // one to each worker (a worker that blocked before it could take the next one keeps
  // that one waiting). Each worker says so by a file named after its pid.
  const dir = t.testdir()
  const release = path.join(dir, 'release')
  // (teardowns run last registered first: the workers are released before the stop)
  t.teardown(() => { if (fs.existsSync(dir)) fs.writeFileSync(release, '') })
  const blocks = Array.from({ length: 4 }, () => get(`http://127.0.0.1:${port}/block?dir=${encodeURIComponent(dir)}`, { timeout: 120_000 }).catch((e: Error) => e))
  const pids = handle.workers().map((w) => w.pid)
  await until(() => pids.every((pid) => fs.existsSync(path.join(dir, String(pid)))), 'every worker to block its loop')
  // Whatever the status is made of, it cannot come from the workers now: a status that
  // waited for them would not come before the release.
  const socket = path.join(home, 'flood.sock')
  const timings: number[] = []
  for (let i = 0; i < 10; i++) {
    const started = process.hrtime.bigint()
    const reply = await ask(socket, 'GET', '/status')
    timings.push(Number(process.hrtime.bigint() - started) / 1e6)
    t.equal(reply.status, 200)
  }
  const viaCli = await statusJson(home, 'flood')
  t.notOk(fs.existsSync(release), 'answered, over the socket and through the CLI, while every worker was blocked')
  // (how fast it answers under a CPU flood is the bench's control table: socket p99 < 20 ms)
  t.comment(`status over the socket while the workers were blocked: ${timings.map((ms) => ms.toFixed(1)).join(', ')} ms`)
  fs.writeFileSync(release, '')
  for (const reply of await Promise.all(blocks)) t.equal((reply as { status?: number }).status, 200, 'a released request is answered')
  const mine = handle.status()
  t.equal(viaCli.pid, process.pid)
  t.same(viaCli.members.map((m: any) => [m.workerId, m.pid, m.state, m.generation]), mine.members.map((m) => [m.workerId, m.pid, m.state, m.generation]), 'the same workers as the handle sees')
  t.same(viaCli.workers, mine.workers)
  const workers = handle.workers()
  for (const m of viaCli.members) {
    t.ok(m.rssBytes > 0 && m.requests >= 0, 'heartbeat figures are there')
    t.ok(workers.some((w) => w.pid === m.pid), 'a worker of the handle')
  }
  const text = JSON.stringify(viaCli)
  t.notMatch(text, /"PORT"|"env"/, 'no environment value is shown')
  t.notOk(text.includes(process.env.PATH!), 'not even PATH')
})

t.test('reload through the socket under keep-alive load: 0 failed requests, the outcome printed', async (t) => {
  const home = controlHome(t)
  const cli = await cluster(t, home, [fixture('apps/lifecycle.js'), '-w', '2', '--name', 'web'], 2)
  const load = startLoad(`http://127.0.0.1:${cli.port}/`, { connections: 10 })
  await until(async () => (await get(`http://127.0.0.1:${cli.port}/`)).status === 200, 'the load to flow')
  const reload = await command(home, ['reload', 'web'])
  const result = await load.stop()
  t.comment(JSON.stringify(result))
  t.equal(reload.code, 0, reload.stderr)
  t.equal(reload.stdout.trim(), 'reload complete: generation 1')
  t.ok(result.requests > 50, `load ran (${result.requests})`)
  t.equal(result.errors, 0)
  t.equal(result.non2xx, 0)
  t.equal(result.timeouts, 0)
  t.ok(cli.events.some((e) => e.event === 'reload.complete'), 'the same reload as a SIGHUP: its events are logged')
  const json = JSON.parse((await command(home, ['reload', '--json'])).stdout)
  t.match(json, { outcome: 'complete', generation: 2 })
})

t.test('a reload onto a broken build exits 1 with the reason; scale +1 / -1 / n; stop exits with the primary\'s code', async (t) => {
  const home = controlHome(t)
  const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: fixture('apps/lifecycle.js'), workers: 2, name: 'svc' }) })
  const cli = await cluster(t, home, [], 2, {}, dir)
  fs.writeFileSync(path.join(dir, 'cluster.config.json'), JSON.stringify({ app: fixture('apps/boot-throw.js'), workers: 2, name: 'svc' }))
  const broken = await command(home, ['reload'])
  t.equal(broken.code, 1)
  // every slot's new worker starts at once: whichever fails first names the reason
  t.match(broken.stdout, /^reload aborted: worker [01] (crashed|exited) before it was ready/)
  fs.writeFileSync(path.join(dir, 'cluster.config.json'), JSON.stringify({ app: fixture('apps/lifecycle.js'), workers: 2, name: 'svc' }))

  const up = await command(home, ['scale', 'svc', '+1'])
  t.equal(up.stdout.trim(), 'workers: 2 → 3')
  await until(async () => (await statusJson(home)).workers.ready === 3, '3 ready workers')
  const down = await command(home, ['scale', '-1', '--json'])
  t.same(JSON.parse(down.stdout), { from: 3, to: 2 })
  t.match(cli.events.filter((e) => e.event === 'scale'), [{ from: 2, to: 3 }, { from: 3, to: 2 }])
  t.same(JSON.parse((await command(home, ['scale', '4', '--json'])).stdout), { from: 2, to: 4 })
  const bad = await command(home, ['scale', 'svc', 'lots'])
  t.equal(bad.code, 64)
  t.match(bad.stderr, /scale: expected n, \+n or -n/)

  const stop = await command(home, ['stop', 'svc'])
  t.equal(stop.code, 0)
  t.equal(stop.stdout.trim(), `stopped svc (pid ${cli.child.pid}): exit code 0`)
  t.equal(await cli.exited, 0)
  t.match(cli.events.find((e) => e.event === 'shutdown.start'), { signal: 'control' })
  const none = await command(home, ['status'])
  t.equal(none.code, 69)
  t.match(none.stderr, /no cluster is running \(no live socket in /)
  const named = await command(home, ['stop', 'svc'])
  t.equal(named.code, 69)
  t.match(named.stderr, /no cluster is running on .*svc\.sock/)
})

t.test('stop passes on a non-zero exit code: a drain killed at its deadline makes it 1', async (t) => {
  const home = controlHome(t)
  const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: fixture('apps/lifecycle.js'), workers: 1, name: 'slow', shutdownTimeoutMs: 500 }) })
  const cli = await cluster(t, home, [], 1, {}, dir)
  const held = get(`http://127.0.0.1:${cli.port}/slow?ms=30000`).catch((e) => e)
  await cli.waitFor('app.slow-start')
  const stop = await command(home, ['stop', '--json'])
  t.equal(stop.code, 1, 'the client exits with the primary\'s code')
  t.match(JSON.parse(stop.stdout), { name: 'slow', pid: cli.child.pid, exitCode: 1 })
  t.equal(await cli.exited, 1)
  t.match(cli.events.find((e) => e.event === 'worker.killed'), { workerId: 0 })
  t.type(await held, Error, 'the request held past the deadline was cut')
})

t.test('a second cluster of a running name fails before forking, naming the pid (exit 73); a stale socket is replaced', async (t) => {
  const home = controlHome(t)
  const first = await cluster(t, home, [fixture('apps/http.js'), '-w', '1', '--name', 'dup'], 1)
  const second = startCli(t, [fixture('apps/http.js'), '-w', '1', '--name', 'dup'], { env: { PORT: String(await freePort()), CLUSTER_RUN_HOME: home } })
  t.equal(await second.exited, 73)
  t.match(second.stderr(), new RegExp(`a cluster named "dup" is already running \\(pid ${first.child.pid}`))
  t.same(second.workerPids(), [], 'nothing forked')

  // SIGKILL leaves the socket behind; ls shows it dead, the next start replaces it.
  const orphans = first.workerPids()
  first.signal('SIGKILL')
  await first.exited
  for (const pid of orphans) await until(() => !alive(pid), `worker ${pid} to exit`)
  t.ok(fs.existsSync(path.join(home, 'dup.sock')), 'the socket was left behind')
  const ls = await command(home, ['ls'])
  t.match(ls.stdout, /dup\s+-\s+dead\s+-\s+\(socket of a primary that is gone\)/)
  const third = await cluster(t, home, [fixture('apps/http.js'), '-w', '1', '--name', 'dup'], 1)
  const status = await statusJson(home, 'dup')
  t.equal(status.pid, third.child.pid, 'the new primary answers on the replaced socket')
})

/** uid and gid of the other user (nobody). */
const NOBODY = 65534

/**
 * The first parent folder of `dir` (or `dir` itself) that other users may not
 * enter (no x bit for others), with its mode; undefined if they can reach `dir`.
 */
function closedToOthers (dir: string): string | undefined {
  for (let at = fs.realpathSync(dir); ; at = path.dirname(at)) {
    const mode = fs.statSync(at).mode & 0o777
    if ((mode & 0o001) === 0) return `${at} (mode ${mode.toString(8)})`
    if (at === path.dirname(at)) return undefined
  }
}

/**
 * Runs `node -e script` as uid/gid NOBODY and resolves with what it printed, or
 * with the cause when it could not run. The node it runs is a copy of this one in
 * a folder of its own that others may enter, made under the first of the temp
 * folders whose every parent they may enter too: this node, the repository and
 * the temp folder may all sit in a folder of mode 0700 (a clone under `mktemp -d`).
 */
async function asOtherUser (t: Test, script: string): Promise<{ stdout: string, cause?: string }> {
  const closed: string[] = []
  let dir: string | undefined
  for (const base of new Set([os.tmpdir(), '/tmp', '/var/tmp', '/dev/shm'])) {
    if (!fs.existsSync(base)) continue
    const shut = closedToOthers(base)
    if (shut !== undefined) {
      closed.push(shut)
      continue
    }
    dir = fs.mkdtempSync(path.join(base, 'cr-other-'))
    break
  }
  if (dir === undefined) return { stdout: '', cause: `no temp folder that uid ${NOBODY} may enter for its copy of node: ${closed.join(', ')}` }
  const folder = dir
  t.teardown(() => fs.rmSync(folder, { recursive: true, force: true }))
  fs.chmodSync(folder, 0o755)
  const bin = path.join(folder, 'node')
  fs.copyFileSync(process.execPath, bin)
  fs.chmodSync(bin, 0o755)
  // its working directory is that folder too: the test's own may be closed to it
  const child = spawn(bin, ['-e', script], { uid: NOBODY, gid: NOBODY, cwd: folder, env: {}, stdio: ['ignore', 'pipe', 'pipe'] })
  reapLater(child.pid)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c })
  child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c })
  const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const ended = await new Promise<{ code: number | null, signal: NodeJS.Signals | null, error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }))
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  clearTimeout(deadline)
  if (ended.error) return { stdout, cause: `${bin} did not start: ${ended.error.message}` }
  if (ended.code !== 0 || stdout === '') {
    const how = ended.signal ? `was killed by ${ended.signal}${ended.signal === 'SIGKILL' ? ' (no answer within 30 s)' : ''}` : `exited ${String(ended.code)}`
    return { stdout, cause: `${bin} ${how} and printed ${JSON.stringify(stdout)}; stderr: ${JSON.stringify(stderr.slice(-1000))}` }
  }
  return { stdout }
}

t.test('owner-only: directory 0700, socket 0600; another uid cannot connect; an open directory is refused', async (t) => {
  const home = controlHome(t)
  const cli = await cluster(t, home, [fixture('apps/http.js'), '-w', '1', '--name', 'safe'], 1)
  const socket = path.join(home, 'safe.sock')
  t.equal(fs.statSync(home).mode & 0o777, 0o700)
  t.equal(fs.statSync(socket).mode & 0o777, 0o600)
  t.ok(fs.statSync(socket).isSocket())
  // A child that drops to uid/gid 65534 (nobody) tries to connect.
  const probe = `require('net').connect(${JSON.stringify(socket)}).on('connect', () => { console.log('connected'); process.exit(0) }).on('error', (e) => { console.log(e.code); process.exit(0) })`
  const ran = await asOtherUser(t, probe)
  if (ran.cause !== undefined) t.fail(`the probe could not run as uid ${NOBODY}: ${ran.cause}`)
  else t.equal(ran.stdout.trim(), 'EACCES', 'another user is refused')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)

  const open = controlHome(t)
  fs.mkdirSync(open, { recursive: true, mode: 0o755 })
  fs.chmodSync(open, 0o755)
  const refused = startCli(t, [fixture('apps/http.js'), '-w', '1', '--name', 'safe'], { env: { PORT: String(await freePort()), CLUSTER_RUN_HOME: open } })
  t.equal(await refused.exited, 77)
  t.match(refused.stderr(), /refusing to open the control socket: .* is open to other users \(mode 755\); make it owner-only: chmod 700/)
  t.same(refused.workerPids(), [])
})

t.test('controlSocket: false runs without a socket; a string sets the path', async (t) => {
  const home = controlHome(t)
  const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: fixture('apps/http.js'), workers: 1, controlSocket: false }) })
  const cli = await cluster(t, home, [], 1, {}, dir)
  t.match(cli.events.find((e) => e.event === 'primary.start'), { controlSocket: false })
  t.notOk(fs.existsSync(home), 'no socket directory is made')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)

  // a chosen directory (short: a socket path has at most 107 bytes), given relative to cwd
  const chosen = path.dirname(controlHome(t))
  fs.writeFileSync(path.join(chosen, 'cluster.config.json'), JSON.stringify({ app: fixture('apps/http.js'), workers: 1, controlSocket: 'ctl.sock' }))
  const custom = await cluster(t, home, [], 1, {}, chosen)
  const socket = path.join(chosen, 'ctl.sock')
  t.equal(fs.statSync(socket).mode & 0o777, 0o600)
  const status = await statusJson(home, '--socket', socket)
  t.equal(status.pid, custom.child.pid)
})

t.test('malformed, oversized and unknown requests get a JSON error and change nothing', async (t) => {
  const home = controlHome(t)
  const cli = await cluster(t, home, [fixture('apps/http.js'), '-w', '1', '--name', 'strict'], 1)
  const socket = path.join(home, 'strict.sock')
  t.match(await ask(socket, 'POST', '/scale', '{"workers": '), { status: 400, json: { error: /malformed JSON body/ } })
  t.match(await ask(socket, 'POST', '/scale', '{"workers": 0}'), { status: 400, json: { error: /invalid scale request/ } })
  t.match(await ask(socket, 'POST', '/scale', '{"workers": 2, "delta": 1}'), { status: 400 })
  t.match(await ask(socket, 'POST', '/scale', '"three"'), { status: 400 })
  t.match(await ask(socket, 'POST', '/scale', JSON.stringify({ workers: 2, pad: 'x'.repeat(70 * 1024) })), { status: 413, json: { error: /too large/ } })
  t.match(await ask(socket, 'GET', '/nope'), { status: 404, json: { error: /no such endpoint/ } })
  t.match(await ask(socket, 'GET', '/reload'), { status: 405, json: { error: /use POST/ } })
  t.match(await ask(socket, 'DELETE', '/status'), { status: 405 })
  const garbage = await raw(socket, 'NOT HTTP AT ALL\r\n\r\n')
  t.match(garbage, /^HTTP\/1\.1 400/, 'not HTTP: a 400 from the parser')
  const status = await ask(socket, 'GET', '/status')
  t.match(status.json, { workers: { desired: 1, ready: 1 }, generation: 0 }, 'nothing changed')
  t.equal(cli.events.filter((e) => e.event === 'scale').length, 0)
  t.ok(alive(cli.child.pid!), 'the primary is fine')
})
