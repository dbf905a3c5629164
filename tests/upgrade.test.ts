// Upgrading the primary itself: a new primary takes the listening sockets over while
// clients keep connecting, under every scheduling policy; one that fails leaves the
// old primary serving; bad requests are refused with nothing changed.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { startCli, fixture, command, controlHome, CLI, FILE_TIMEOUT_MS, type Cli } from './helpers/cli.js'
import { reapLater } from './helpers/reap.js'
import { get, freePort, until } from './helpers/http.js'
import { reusePortSupport } from '../lib/common/reuseport.js'

t.setTimeout(FILE_TIMEOUT_MS)

const APP = fixture('apps/upgradable.js')

interface Tally {
  ok: number
  /** failed requests, by error code */
  errors: Record<string, number>
  /** answers by the pid of the primary of the worker that gave them */
  byPrimary: Map<number, number>
}

/**
 * Requests one after another on `lanes` lanes until stopped (a minute at most): with
 * keep-alive, or each on a new connection. Every failure is counted by its code.
 */
function clients (port: number, { keepAlive, lanes = 4 }: { keepAlive: boolean, lanes?: number }): { stop: () => Promise<Tally> } {
  const tally: Tally = { ok: 0, errors: {}, byPrimary: new Map() }
  const agent = new http.Agent({ keepAlive, maxSockets: lanes })
  const deadline = Date.now() + 60_000
  const load = { stopped: false }
  const lane = async (): Promise<void> => {
    while (!load.stopped && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 10_000 }, (res) => {
          let body = ''
          res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
          res.on('end', () => {
            if (res.statusCode === 200) {
              tally.ok++
              const { primary } = JSON.parse(body) as { primary: number }
              tally.byPrimary.set(primary, (tally.byPrimary.get(primary) ?? 0) + 1)
            } else {
              tally.errors[`status ${res.statusCode}`] = (tally.errors[`status ${res.statusCode}`] ?? 0) + 1
            }
            resolve()
          })
          res.on('error', (err: NodeJS.ErrnoException) => { tally.errors[err.code ?? err.message] = (tally.errors[err.code ?? err.message] ?? 0) + 1; resolve() })
        })
        req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
        req.on('error', (err: NodeJS.ErrnoException) => { tally.errors[err.code ?? err.message] = (tally.errors[err.code ?? err.message] ?? 0) + 1; resolve() })
      })
    }
  }
  const running = Promise.all(Array.from({ length: lanes }, lane))
  return {
    stop: async () => {
      load.stopped = true
      await running
      agent.destroy()
      return tally
    },
  }
}

/** A cluster of the upgradable app, with its control home and port. */
async function cluster (t: Test, args: string[], env: Record<string, string> = {}): Promise<{ cli: Cli, home: string, port: number }> {
  const home = controlHome(t)
  const port = await freePort()
  const cli = startCli(t, [APP, '-n', 'up', ...args], { env: { PORT: String(port), CLUSTER_RUN_HOME: home, ...env } })
  await cli.untilReady(Number(args[args.indexOf('-w') + 1]), 60_000)
  return { cli, home, port }
}

/** The new primary's pid, once it started; it is killed at the end of the file if a test leaves it. */
async function newPrimary (cli: Cli): Promise<number> {
  const { pid } = await cli.waitFor('upgrade.start', undefined, 60_000)
  reapLater(pid)
  return pid
}

const reusePort = reusePortSupport(process.version, process.platform).supported

for (const policy of ['rr', 'none', 'sticky', 'reuseport'] as const) {
  t.test(`${policy}: an upgrade under load refuses no connection and fails no request; the new primary serves, under the same name`, async (t) => {
    const metricsPort = await freePort()
    const { cli, home, port } = await cluster(t, ['-w', '2', '--scheduling-policy', policy, '--metrics-port', String(metricsPort)],
      // sticky and the wildcard address: a listen without a host takes the inherited [::] socket
      policy === 'sticky' ? {} : { HOST: '127.0.0.1' })
    const oldPid = cli.child.pid!
    const keepAlive = clients(port, { keepAlive: true })
    const fresh = clients(port, { keepAlive: false })
    await until(async () => (await get(`http://127.0.0.1:${port}/`)).status === 200, 'the old primary to serve')
    const upgrading = command(home, ['upgrade', 'up'])
    const pid = await newPrimary(cli)
    const ran = await upgrading
    t.equal(ran.code, 0, `upgrade exits 0 (${ran.stderr})`)
    t.match(ran.stdout, new RegExp(`upgrade complete: up pid ${oldPid} \\(node ${process.version}\\) → pid ${pid} \\(node ${process.version}\\) in \\d+ ms; the old primary exited with code 0`))
    // the command returns once the old primary has exited
    t.equal(await cli.exited, 0, 'the old primary exits 0')
    // some more requests, all to the new primary's workers
    const servedBy = new Set<number>()
    for (let i = 0; i < 20; i++) servedBy.add((await get(`http://127.0.0.1:${port}/`)).json().primary)
    const [a, b] = await Promise.all([keepAlive.stop(), fresh.stop()])
    for (const [kind, tally] of [['keep-alive', a], ['new connections', b]] as const) {
      t.same(tally.errors, {}, `${kind}: no request failed (${tally.ok} answered)`)
      t.ok((tally.byPrimary.get(oldPid) ?? 0) > 0, `${kind}: the old primary's workers answered before`)
    }
    t.same([...servedBy], [pid], 'after the old primary exited, the new one serves alone')
    const events = cli.events
    const complete = events.find((e) => e.event === 'upgrade.complete')
    t.match(complete, { pid, node: process.version, durationMs: Number })
    // reuseport runs rr where Node lacks it (--check has its own test)
    const runs = policy === 'reuseport' && !reusePort ? 'rr' : policy
    t.match(events.find((e) => e.event === 'primary.start' && e.pid === pid), { upgradedFrom: oldPid, schedulingPolicy: runs })
    t.match(events.find((e) => e.event === 'shutdown.start' && e.pid === undefined), { signal: 'upgrade' })
    t.notOk(events.some((e) => e.event === 'socket.unused'), 'every socket handed over was taken')
    // reuseport: a socket per worker
    const sockets = runs === 'reuseport' ? 3 : 2
    t.equal(events.filter((e) => e.event === 'socket.inherited' && e.from === 'upgrade').length, sockets, `the app's port${runs === 'reuseport' ? ' (each worker\'s socket)' : ''} and the metrics port were handed over`)
    // one cluster of that name, the new one, answering on the same socket and metrics port
    const ls = await command(home, ['ls', '--json'])
    const listed = JSON.parse(ls.stdout) as Array<{ name: string, pid: number }>
    t.same(listed.map((c) => [c.name, c.pid]), [['up', pid]], 'ls shows the one cluster, with the new pid')
    // (the dashboard's token file stays: an open page goes on working with the new primary)
    t.same(fs.readdirSync(home).filter((f) => f !== 'up.token'), ['up.sock'], 'no socket is left beside the cluster\'s')
    const metrics = await get(`http://127.0.0.1:${metricsPort}/metrics`)
    t.equal(metrics.status, 200, 'the metrics port answers from the new primary')
    const stopped = await command(home, ['stop', 'up'])
    t.equal(stopped.code, 0, 'the new primary stops cleanly')
    t.match(stopped.stdout, `(pid ${pid})`)
  })
}

/** A cluster started under rr from a config file, which then asks for another policy (for the next reload or upgrade). */
async function policyChanged (t: Test, schedulingPolicy: string): Promise<{ cli: Cli, home: string, port: number }> {
  const home = controlHome(t)
  const port = await freePort()
  const config = (policy: string): string => JSON.stringify({ app: APP, name: 'up', workers: 2, schedulingPolicy: policy })
  const dir = t.testdir({ 'cluster.config.json': config('rr') })
  const cli = startCli(t, [], { cwd: dir, env: { PORT: String(port), HOST: '127.0.0.1', CLUSTER_RUN_HOME: home } })
  await cli.untilReady(2, 60_000)
  fs.writeFileSync(path.join(dir, 'cluster.config.json'), config(schedulingPolicy))
  return { cli, home, port }
}

t.test('a change a reload cannot apply (schedulingPolicy) is named at the reload and takes effect through an upgrade; the totals carry over', async (t) => {
  const { cli, home, port } = await policyChanged(t, 'none')
  const reload = await command(home, ['reload'])
  t.equal(reload.code, 0, 'the reload completes')
  t.match(cli.events.find((e) => e.event === 'config.warning' && e.key === 'schedulingPolicy'), { command: 'cluster-run upgrade', message: /keeping "rr" until `cluster-run upgrade`/ })
  // the old workers drain together once the reload is complete
  const before = await until(async () => {
    const status = JSON.parse((await command(home, ['status', '--json'])).stdout)
    return status.exits.drained === 2 ? status : undefined
  }, 'the reload to drain the two old workers')
  t.equal(before.schedulingPolicy, 'rr')
  t.equal(before.reloads.complete, 1)
  const upgrade = await command(home, ['upgrade'])
  t.equal(upgrade.code, 0, upgrade.stderr)
  t.equal(await cli.exited, 0)
  const after = JSON.parse((await command(home, ['status', '--json'])).stdout)
  reapLater(after.pid)
  t.equal(after.schedulingPolicy, 'none', 'the new primary runs the policy of the config')
  t.equal(after.reloads.complete, 1, 'the count of reloads carried over')
  t.ok(after.exits.drained >= 2, 'and the exits by reason')
  t.equal((await get(`http://127.0.0.1:${port}/`)).json().primary, after.pid)
  t.equal((await command(home, ['stop'])).code, 0)
})

t.test('an upgrade from rr to reuseport: the old primary\'s socket has no SO_REUSEPORT, so the new workers share it (as under none) and say so; nothing fails', async (t) => {
  const { cli, home, port } = await policyChanged(t, 'reuseport')
  const fresh = clients(port, { keepAlive: false })
  await until(async () => (await get(`http://127.0.0.1:${port}/`)).status === 200, 'the old primary to serve')
  const upgrade = await command(home, ['upgrade'])
  t.equal(upgrade.code, 0, upgrade.stderr)
  t.equal(await cli.exited, 0)
  const tally = await fresh.stop()
  t.same(tally.errors, {}, `no request failed (${tally.ok} answered)`)
  const after = JSON.parse((await command(home, ['status', '--json'])).stdout)
  reapLater(after.pid)
  const warning = cli.events.find((e) => e.event === 'config.warning' && e.key === 'schedulingPolicy')
  if (reusePort) {
    t.equal(after.schedulingPolicy, 'none', 'the new primary shares the inherited socket')
    t.match(warning, { asked: 'reuseport', runs: 'none', message: new RegExp(`port ${port} was bound without SO_REUSEPORT`) })
  } else {
    t.equal(after.schedulingPolicy, 'rr', `Node ${process.version} has no reuseport: rr`)
    t.match(warning, { asked: 'reuseport', runs: 'rr' })
  }
  t.equal((await get(`http://127.0.0.1:${port}/`)).json().primary, after.pid)
  t.equal((await command(home, ['stop'])).code, 0)
})

t.test('a new primary whose app fails at boot: the upgrade aborts, the old primary serves on as before', async (t) => {
  const dir = t.testdir({})
  const breakFile = path.join(dir, 'broken')
  const { cli, home, port } = await cluster(t, ['-w', '2'], { HOST: '127.0.0.1', BREAK_FILE: breakFile })
  const fresh = clients(port, { keepAlive: false })
  fs.writeFileSync(breakFile, '')
  const ran = await command(home, ['upgrade'])
  t.equal(ran.code, 1, 'upgrade exits 1')
  t.match(ran.stderr, /^upgrade aborted: the new primary failed to start: .*\n$/)
  const pid = (await cli.waitFor('upgrade.start')).pid as number
  t.match(await cli.waitFor('upgrade.aborted'), { reason: /failed to start/, durationMs: Number })
  t.ok(cli.events.some((e) => e.event === 'boot.failed'), 'the new primary said why')
  const tally = await fresh.stop()
  t.same(tally.errors, {}, `no request failed (${tally.ok} answered)`)
  t.same([...tally.byPrimary.keys()], [cli.child.pid], 'the old primary served throughout')
  await until(() => { try { process.kill(pid, 0); return false } catch { return true } }, 'the new primary to be gone')
  t.equal(cli.child.exitCode, null, 'the old primary runs on')
  t.same(fs.readdirSync(home), ['up.sock'], 'the new primary\'s socket is gone')
  // and it can still be upgraded once the app is fixed
  fs.rmSync(breakFile)
  const again = await command(home, ['upgrade', '--json'])
  t.equal(again.code, 0, 'the next upgrade completes')
  t.match(JSON.parse(again.stdout), { name: 'up', outcome: 'complete', from: { pid: cli.child.pid }, exitCode: 0 })
  t.equal(await cli.exited, 0)
  t.equal((await command(home, ['stop'])).code, 0)
})

t.test('refused, with nothing changed: a --node that is no node, an upgrade during an upgrade, a body that is not one', async (t) => {
  const { cli, home } = await cluster(t, ['-w', '1'], { HOST: '127.0.0.1' })
  const missing = await command(home, ['upgrade', '--node', '/nonexistent/node'])
  t.equal(missing.code, 1)
  t.equal(missing.stderr, 'upgrade refused: /nonexistent/node is not an executable file (ENOENT)\n')
  const notNode = await command(home, ['upgrade', '--node', '/bin/sh'])
  t.equal(notNode.code, 1)
  t.match(notNode.stderr, 'upgrade refused: /bin/sh is not a node binary')
  const old = path.join(t.testdir({}), 'node18')
  fs.writeFileSync(old, '#!/bin/sh\necho v18.20.4\n', { mode: 0o755 })
  const tooOld = await command(home, ['upgrade', '--node', old])
  t.equal(tooOld.code, 1)
  t.equal(tooOld.stderr, `upgrade refused: ${old} is node v18.20.4; cluster-run needs 20.19 or later\n`)
  const wrongCommand = await command(home, ['status', '--node', '/bin/sh'])
  t.equal(wrongCommand.code, 64, '--node goes with upgrade only')
  const socket = path.join(home, 'up.sock')
  for (const body of ['{"node": "relative/node"}', '{"node": 1}', '{"nodes": "/x"}', '[]']) {
    const reply = await rawPost(socket, '/upgrade', body)
    t.equal(reply.status, 400, `400 for ${body}`)
  }
  // a second upgrade while the first runs
  const first = command(home, ['upgrade'])
  await newPrimary(cli)
  const second = await command(home, ['upgrade'])
  t.equal(second.code, 1)
  t.equal(second.stderr, 'upgrade refused: an upgrade is running already\n')
  t.equal((await first).code, 0, 'the first one completes')
  t.equal(await cli.exited, 0)
  t.ok(cli.events.filter((e) => e.event === 'upgrade.refused').length >= 4, 'each refusal is an event')
  t.equal((await command(home, ['stop'])).code, 0)
})

t.test('SIGUSR2 upgrades the primary, as the command does; a logs follower goes on with the new primary', async (t) => {
  const { cli, home, port } = await cluster(t, ['-w', '1'], { HOST: '127.0.0.1' })
  const follower = spawn(process.execPath, [CLI, 'logs', '-f', '-n', '10'], { env: { ...process.env, CLUSTER_RUN_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
  reapLater(follower.pid)
  t.teardown(() => { follower.kill('SIGKILL') })
  const followerExited = once(follower, 'exit')
  let followed = ''
  follower.stdout.setEncoding('utf8').on('data', (chunk: string) => { followed += chunk })
  await get(`http://127.0.0.1:${port}/log?text=before`)
  await until(() => followed.includes('before'), 'the follower to print a line of the old primary\'s worker')
  cli.signal('SIGUSR2')
  const pid = await newPrimary(cli)
  await cli.waitFor('upgrade.complete', (e) => e.pid === pid, 60_000)
  t.equal(await cli.exited, 0, 'the old primary exits 0')
  await get(`http://127.0.0.1:${port}/log?text=after`)
  await until(() => followed.includes('after'), 'the follower to print a line of the new primary\'s worker')
  t.equal(follower.exitCode, null, 'the follower follows on')
  t.equal((await command(home, ['stop'])).code, 0)
  const [code] = await followerExited
  t.equal(code, 0, 'the follower ends with the cluster')
})

/** A POST with a raw body to the control socket. */
function rawPost (socketPath: string, route: string, body: string): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: route, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode!, text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}
