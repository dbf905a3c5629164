// Work for clients that already left: requests whose client closed its connection
// while a saturated worker could not read them are not handed to the app, and are
// counted as abandoned (heartbeat, status, /metrics). Under both scheduling policies.
import t from 'tap'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { startCli, fixture, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'
import { request } from '../lib/control/client.js'
import type { ClusterStatus } from '../lib/supervisor/status.js'

t.setTimeout(FILE_TIMEOUT_MS)

for (const policy of ['rr', 'none'] as const) {
  t.test(`${policy}: requests whose clients gave up while the worker was busy never reach the handler; each is counted as abandoned`, async (t) => {
    const port = await freePort()
    const cli = startCli(t, [fixture('apps/work.js'), '-w', '1', '--scheduling-policy', policy, '--metrics-port', '0'], { env: { PORT: String(port) } })
    await cli.untilReady(1)
    const { controlSocket, metrics } = await cli.waitFor('primary.start')
    const url = `http://127.0.0.1:${port}`
    // The worker blocks its loop for 1.5 s (then its loop counts as saturated) and until
    // the ten clients below have sent their request and closed, then keeps its loop
    // saturated until the test has seen what became of them: however slowly this
    // machine runs the clients, or hands the connections over under rr (one per turn
    // of the worker's loop), each request is read while the worker is saturated.
    const dir = t.testdir()
    const [closed, counted] = [path.join(dir, 'closed'), path.join(dir, 'counted')]
    const busy = get(`${url}/busy?ms=1500&until=${encodeURIComponent(closed)}&then=${encodeURIComponent(counted)}`, { timeout: 90_000 })
    await cli.waitFor('app.busy')
    // ten clients send a request and close at once: gone before the worker can read them
    await Promise.all(Array.from({ length: 10 }, () => new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end('GET /work HTTP/1.1\r\nHost: x\r\n\r\n', () => resolve()))
      socket.on('error', reject)
    })))
    fs.writeFileSync(closed, '')
    // each of the ten is either abandoned or run: wait until all ten are accounted for
    const runs = async (): Promise<number> => (await get(`${url}/runs`)).json().runs
    const status = await until(async () => {
      const s = (await request(controlSocket, 'GET', '/status', undefined, 10_000)).json as ClusterStatus
      return (s.members[0].abandoned ?? 0) + await runs() >= 10 ? s : null
    }, 'the heartbeat to account for the ten requests', 30_000)
    fs.writeFileSync(counted, '')
    t.equal((await busy).status, 200)
    t.equal(status.members[0].abandoned, 10, 'all ten counted as abandoned')
    t.equal(await runs(), 0, 'the handler ran for none of the ten')
    t.equal((await get(`${url}/work`)).json().runs, 1, 'and it runs for a client that stayed')
    t.match((await get(`${metrics}/metrics`)).body, /^cluster_run_worker_abandoned_requests_total\{worker="0"\} 10$/m)
    cli.signal('SIGTERM')
    t.equal(await cli.exited, 0)
  })
}

t.test('an idle worker hands each request on at once, whatever its client does after, even right after a busy boot', async (t) => {
  const port = await freePort()
  // the boot's busy second is over once the worker listens: it leaves no request waiting
  const cli = startCli(t, [fixture('apps/work.js'), '-w', '1'], { env: { PORT: String(port), BOOT_MS: '1000' } })
  await cli.untilReady(1)
  // a request followed at once by the client's close: the worker is not saturated, the handler runs
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end('GET /work HTTP/1.1\r\nHost: x\r\n\r\n'))
    socket.resume().on('close', () => resolve())
    socket.on('error', reject)
  })
  t.equal((await until(async () => {
    const runs = (await get(`http://127.0.0.1:${port}/runs`)).json().runs
    return runs >= 1 ? runs : null
  }, 'the handler to have run', 30_000)), 1)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})
