// sd_notify under a real $NOTIFY_SOCKET: a unix datagram socket read by a listener
// that does what systemd does with each message (reads it; closes the descriptor a
// BARRIER=1 carries, which releases the sender), and prints it as a JSON line.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { startCli, fixture, command, controlHome, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { reapLater } from './helpers/reap.js'
import { freePort, until } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

const APP = fixture('apps/upgradable.js')

const LISTENER = `
import array, json, os, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    data, ancdata, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
            for fd in fds:
                os.close(fd)
    fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
    print(json.dumps(fields), flush=True)
`

t.test('READY=1 once every worker is ready, RELOADING=1 and READY=1 around a reload, MAINPID= and READY=1 from an upgrade\'s new primary, STOPPING=1, WATCHDOG=1', async (t) => {
  // short: a socket path has at most 107 bytes
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'listener.py'), LISTENER)
  const socketPath = path.join(dir, 'notify')
  const listener = spawn('python3', [path.join(dir, 'listener.py'), socketPath], { stdio: ['ignore', 'pipe', 'inherit'] })
  reapLater(listener.pid)
  t.teardown(() => { listener.kill('SIGKILL') })
  const messages: Array<Record<string, string>> = []
  let pending = ''
  listener.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) messages.push(JSON.parse(line))
  })
  await until(() => messages.length > 0, 'the notify listener to listen')
  const home = controlHome(t)
  const port = await freePort()
  const cli = startCli(t, [APP, '-w', '2', '-n', 'sd'], { env: { PORT: String(port), HOST: '127.0.0.1', CLUSTER_RUN_HOME: home, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '400000' } })
  await cli.untilReady(2, 60_000)
  const after = (from: number, match: (m: Record<string, string>) => boolean, what: string): Promise<number> =>
    until(() => { const i = messages.findIndex((m, j) => j >= from && match(m)); return i >= 0 ? i + 1 : undefined }, what, 60_000)

  const ready = await after(0, (m) => m.READY === '1', 'READY=1')
  t.equal(messages[ready - 1].STATUS, '2/2 workers ready', 'with the worker count')
  t.notOk(messages.slice(0, ready - 1).some((m) => m.READY), 'not before')
  await after(0, (m) => m.WATCHDOG === '1', 'a first WATCHDOG=1')
  const pings = messages.filter((m) => m.WATCHDOG === '1').length
  await until(() => messages.filter((m) => m.WATCHDOG === '1').length >= pings + 2, 'more WATCHDOG=1, every 200 ms', 60_000)

  // a reload (Type=notify-reload sends SIGHUP)
  const before = Number(process.hrtime.bigint() / 1000n)
  cli.signal('SIGHUP')
  const reloading = await after(ready, (m) => m.RELOADING === '1', 'RELOADING=1')
  const usec = Number(messages[reloading - 1].MONOTONIC_USEC)
  t.ok(usec >= before && usec <= Number(process.hrtime.bigint() / 1000n), 'MONOTONIC_USEC is CLOCK_MONOTONIC, at the reload')
  await cli.waitFor('reload.complete', undefined, 60_000)
  const reloaded = await after(reloading, (m) => m.READY === '1', 'READY=1 after the reload')
  t.equal(messages[reloaded - 1].STATUS, '2/2 workers ready')

  // an upgrade: the new primary tells its pid, before the old one exits
  const upgrading = command(home, ['upgrade'])
  const { pid } = await cli.waitFor('upgrade.start', undefined, 60_000)
  reapLater(pid)
  const mainPid = await after(reloaded, (m) => m.MAINPID !== undefined, 'MAINPID=')
  t.match(messages[mainPid - 1], { MAINPID: String(pid), READY: '1', STATUS: '2/2 workers ready' })
  t.equal((await upgrading).code, 0)
  t.notOk(messages.slice(reloaded).some((m) => m.STOPPING), 'a drain for an upgrade is no stop')
  t.equal(await cli.exited, 0)
  // the new primary pings the watchdog of the service it now is
  const pinged = messages.length
  await after(pinged, (m) => m.WATCHDOG === '1', 'WATCHDOG=1 from the new primary')

  const stop = await command(home, ['stop'])
  t.equal(stop.code, 0)
  await after(mainPid, (m) => m.STOPPING === '1', 'STOPPING=1')
})
