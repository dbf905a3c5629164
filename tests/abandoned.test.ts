// Work for clients that already left: requests whose client closed its connection
// while a saturated worker could not read them are not handed to the app, and are
// counted as abandoned (heartbeat, status, /metrics). Under both scheduling policies.
import t from 'tap'
import net from 'node:net'
import { startCli, fixture } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'
import { request } from '../lib/control/client.js'
import type { ClusterStatus } from '../lib/supervisor/status.js'

for (const policy of ['rr', 'none'] as const) {
  t.test(`${policy}: requests whose clients gave up while the worker was busy never reach the handler; each is counted as abandoned`, async (t) => {
    const port = await freePort()
    const cli = startCli(t, [fixture('apps/work.js'), '-w', '1', '--scheduling-policy', policy, '--metrics-port', '0'], { env: { PORT: String(port) } })
    await cli.untilReady(1)
    const { controlSocket, metrics } = await cli.waitFor('primary.start')
    const url = `http://127.0.0.1:${port}`
    const busy = get(`${url}/busy?ms=1500`)
    await cli.waitFor('app.busy')
    // ten clients send a request and close at once: gone before the worker can read them
    await Promise.all(Array.from({ length: 10 }, () => new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end('GET /work HTTP/1.1\r\nHost: x\r\n\r\n', () => resolve()))
      socket.on('error', reject)
    })))
    t.equal((await busy).status, 200)
    const status = await until(async () => {
      const s = (await request(controlSocket, 'GET', '/status', undefined, 2000)).json as ClusterStatus
      return s.members[0].abandoned === 10 ? s : null
    }, 'the heartbeat to count 10 abandoned requests')
    t.equal(status.members[0].abandoned, 10)
    t.equal((await get(`${url}/work`)).json().runs, 1, 'the handler ran for the client that stayed, and for none of the ten')
    t.match((await get(`${metrics}/metrics`)).body, /^cluster_run_worker_abandoned_requests_total\{worker="0"\} 10$/m)
    cli.signal('SIGTERM')
    t.equal(await cli.exited, 0)
  })
}

t.test('an idle worker hands each request on at once, whatever its client does after', async (t) => {
  const port = await freePort()
  const cli = startCli(t, [fixture('apps/work.js'), '-w', '1'], { env: { PORT: String(port) } })
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
  }, 'the handler to have run')), 1)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})
