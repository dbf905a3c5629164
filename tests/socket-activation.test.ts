// Socket activation: a primary started with LISTEN_FDS/LISTEN_PID (systemd's .socket
// units, systemd-socket-activate) serves the apps' listens on the sockets it was given,
// under every scheduling policy; while something else holds the socket, a restart of
// the whole cluster refuses no connection.
import t from 'tap'
import net from 'node:net'
import http from 'node:http'
import { spawn } from 'node:child_process'
import { watchCli, fixture, command, controlHome, CLI, FILE_TIMEOUT_MS, type Cli } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'
import { reusePortSupport } from '../lib/common/reuseport.js'

t.setTimeout(FILE_TIMEOUT_MS)

const APP = fixture('apps/upgradable.js')

/**
 * What the primary needs of the test's environment (systemd-socket-activate passes only -E
 * variables): the app's, and all of tap's (its process-info loader in NODE_OPTIONS reads
 * its own variables; without them it records coverage that tap then reports and checks,
 * even with coverage off).
 */
const passed = (env: NodeJS.ProcessEnv): string[] => Object.keys(env).filter((name) => ['CLUSTER_RUN_HOME', 'PORT', 'HOST'].includes(name) || /^(NODE_|TAP|_TAPJS)/.test(name))

const reusePort = reusePortSupport(process.version, process.platform).supported

for (const policy of ['rr', 'none', 'sticky', 'reuseport'] as const) {
  t.test(`${policy}: under systemd-socket-activate, the app's listen is served on the socket systemd made; the first connection waits, never refused`, async (t) => {
    const port = await freePort()
    const home = controlHome(t)
    // rr: the app listens on the socket's host; none: on no host (listen(port) takes the socket of its port,
    // whatever address systemd bound); sticky: on no host, on a wildcard socket
    const env: NodeJS.ProcessEnv = { ...process.env, CLUSTER_RUN_HOME: home, PORT: String(port), HOST: policy === 'rr' ? '127.0.0.1' : '' }
    const setenv = passed(env).flatMap((name) => ['-E', name])
    // a wildcard socket for sticky: a listen without a host takes it
    const listen = policy === 'sticky' ? `[::]:${port}` : `127.0.0.1:${port}`
    const cli = watchCli(t, spawn('systemd-socket-activate', ['-l', listen, '--fdname=web', ...setenv, process.execPath, CLI, APP, '-w', '2', '-n', 'sa', '--scheduling-policy', policy], { env, stdio: ['ignore', 'pipe', 'pipe'] }))
    // systemd-socket-activate starts the primary on the first connection, which waits in the queue meanwhile
    await until(() => cli.stderr().includes('Listening on'), 'systemd-socket-activate to listen')
    const first = await get(`http://127.0.0.1:${port}/`, { timeout: 60_000 })
    t.equal(first.status, 200, 'the first connection is served once the workers listen')
    t.equal(first.json().primary, cli.child.pid, 'by a worker of the primary systemd-socket-activate became')
    await cli.untilReady(2, 60_000)
    t.match(cli.events.find((e) => e.event === 'socket.inherited'), { from: 'systemd', name: 'web', address: listen })
    t.notOk(cli.events.some((e) => e.event === 'socket.unused' || e.event === 'socket.skipped'), 'the socket was used')
    if (policy === 'reuseport' && reusePort) {
      // one socket per address from systemd, where reuseport wants one per worker: they share it
      t.match(cli.events.find((e) => e.event === 'primary.start'), { schedulingPolicy: 'none' })
      t.match(cli.events.find((e) => e.event === 'config.warning' && e.key === 'schedulingPolicy'), { asked: 'reuseport', runs: 'none', message: /bound without SO_REUSEPORT \(systemd's socket activation/ })
    } else if (policy === 'reuseport') {
      t.match(cli.events.find((e) => e.event === 'primary.start'), { schedulingPolicy: 'rr' }, `Node ${process.version} has no reuseport: rr`)
    }
    const listening = cli.events.filter((e) => e.event === 'worker.listening').map((e) => e.address)
    // (what a worker's listen asked for: with no host, the wildcard, although the socket it got is systemd's)
    t.same(listening.map((address) => address.slice(address.lastIndexOf(':') + 1)), [String(port), String(port)], 'both workers listen on its port')
    const stop = await command(home, ['stop'])
    t.equal(stop.code, 0, 'stops cleanly')
    t.equal(await cli.exited, 0)
  })
}

for (const policy of ['none', 'rr'] as const) {
  t.test(`${policy}: a socket held by another process (as systemd holds a .socket unit's): the cluster stops and starts again under load, and no connection is refused`, async (t) => {
    const port = await freePort()
    const home = controlHome(t)
    // Bound here and never listened on here: only the primaries accept on it. Once one has
    // listened, the kernel queues connections on it for as long as this process holds it.
    const holder = (net as unknown as { _createServerHandle: (address: string, port: number, type: number) => { fd: number, close: () => void } })._createServerHandle('127.0.0.1', port, 4)
    t.teardown(() => holder.close())
    const start = (): Cli => watchCli(t, spawn('/bin/sh', ['-c', 'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$@"', 'sh', process.execPath, CLI, APP, '-w', '2', '-n', 'held', '--scheduling-policy', policy], {
      env: { ...process.env, CLUSTER_RUN_HOME: home, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe', holder.fd],
    }))
    const first = start()
    await first.untilReady(2, 60_000)
    t.match(first.events.find((e) => e.event === 'socket.inherited'), { from: 'systemd', address: `127.0.0.1:${port}` })
    let ok = 0
    const errors: string[] = []
    const primaries = new Set<number>()
    const load = { stopped: false }
    const lane = async (): Promise<void> => {
      const deadline = Date.now() + 90_000
      while (!load.stopped && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          // a new connection each time, waiting as long as a restart may take
          const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 60_000 }, (res) => {
            let body = ''
            res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
            res.on('end', () => { ok++; primaries.add(JSON.parse(body).primary); resolve() })
            res.on('error', (err) => { errors.push(err.message); resolve() })
          })
          req.on('timeout', () => req.destroy(new Error('timeout')))
          req.on('error', (err) => { errors.push(err.message); resolve() })
        })
      }
    }
    const lanes = Promise.all([lane(), lane(), lane(), lane()])
    await until(() => ok > 20, 'requests to the first cluster')
    // systemctl restart: stop, wait for the exit, start
    first.signal('SIGTERM')
    t.equal(await first.exited, 0, 'the first cluster stops cleanly')
    const second = start()
    await second.untilReady(2, 60_000)
    const served = ok
    await until(() => ok > served + 20, 'requests to the second cluster')
    load.stopped = true
    await lanes
    t.same(errors.filter((e) => e.includes('ECONNREFUSED')), [], `no connection refused (${ok} answered)`)
    if (policy === 'none') {
      t.same(errors, [], 'and no request failed: every connection waited in the socket\'s queue')
    } else {
      // rr: a connection the primary had accepted, and not yet handed to a worker when the
      // last one left, is closed (README, "Socket activation"); a busy machine sees a few
      t.comment(`rr: ${errors.length} requests failed otherwise (${[...new Set(errors)].join(', ') || 'none'})`)
    }
    t.same([...primaries].sort(), [first.child.pid, second.child.pid].sort(), 'both clusters answered')
    t.equal((await command(home, ['stop'])).code, 0)
    t.equal(await second.exited, 0)
  })
}
