// Real-time apps: WebSocket-aware drain and sticky sessions, with real ws, socket.io,
// socket.io-client and @socket.io/cluster-adapter, 4 workers.
import t, { type Test } from 'tap'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import { io as connect, type Socket as IoSocket } from 'socket.io-client'
import { startCli, fixture, type Cli, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

async function cluster (t: Test, args: string[], workers: number, env: Record<string, string> = {}, config?: Record<string, unknown>): Promise<Cli & { port: number }> {
  const port = await freePort()
  const cwd = config ? t.testdir({ 'cluster.config.json': JSON.stringify(config) }) : undefined
  const cli = startCli(t, args, { env: { PORT: String(port), ...env }, cwd })
  await cli.untilReady(workers)
  return Object.assign(cli, { port })
}

interface Client {
  ws: WebSocket
  hello: Promise<number>
  closed: Promise<number>
  /** sends {n, delayMs} and resolves with the answering pid */
  ask: (n: number, delayMs?: number) => Promise<number>
}

function client (port: number): Client {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
  const waiting = new Map<number, (pid: number) => void>()
  let hello!: (pid: number) => void
  const helloP = new Promise<number>((resolve) => { hello = resolve })
  ws.on('message', (data) => {
    const m = JSON.parse(String(data))
    if (m.hello) hello(m.hello)
    else waiting.get(m.echo)?.(m.pid)
  })
  ws.on('error', () => {})
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  return {
    ws,
    hello: helloP,
    closed,
    ask: (n, delayMs) => new Promise((resolve) => {
      waiting.set(n, resolve)
      ws.send(JSON.stringify({ n, delayMs }))
    }),
  }
}

const countCodes = (codes: number[]): Record<string, number> => codes.reduce<Record<string, number>>((c, code) => ({ ...c, [code]: (c[code] ?? 0) + 1 }), {})

/** A client that reconnects 50 ms after each close; `pid` is the worker it is connected to now. */
function reconnecting (port: number): { closes: number, pid: () => Promise<number>, stop: () => void } {
  let current = client(port)
  let stopped = false
  const me = {
    closes: 0,
    pid: () => current.hello,
    stop: () => { stopped = true; current.ws.terminate() },
  }
  const watch = (c: Client): void => {
    void c.closed.then(() => {
      if (stopped) return
      me.closes++
      setTimeout(() => { if (!stopped) watch(current = client(port)) }, 50)
    })
  }
  watch(current)
  return me
}

const RELOAD_POLICIES = ['rr', 'none', 'reuseport'] as const
for (const schedulingPolicy of RELOAD_POLICIES) {
  t.test(`a reload closes each of 200 reconnecting WebSocket clients once, under ${schedulingPolicy}: they come back to new workers only`, async (t) => {
    const cli = await cluster(t, [fixture('apps/ws.js')], 4, { WS_DRAIN: 'helper' }, { app: fixture('apps/ws.js'), workers: 4, schedulingPolicy, shutdownTimeoutMs: 30_000 })
    const oldPids = new Set(cli.workerPids())
    const clients = Array.from({ length: 200 }, () => reconnecting(cli.port))
    t.teardown(() => { for (const c of clients) c.stop() })
    await Promise.all(clients.map((c) => c.pid()))
    cli.signal('SIGHUP')
    await cli.waitFor('reload.complete', undefined, 60_000)
    for (const pid of oldPids) await cli.waitFor('worker.exit', (e) => e.pid === pid, 60_000)
    // every client closed by its old worker has reconnected to a new one
    await until(async () => {
      if (clients.some((c) => c.closes === 0)) return false
      const pids = await Promise.all(clients.map((c) => c.pid()))
      return pids.every((pid) => !oldPids.has(pid))
    }, 'every client to be back, on a new worker', 60_000)
    const byCloses = clients.reduce<Record<string, number>>((n, c) => ({ ...n, [c.closes]: (n[c.closes] ?? 0) + 1 }), {})
    t.same(byCloses, { 1: 200 }, 'closes per client')
  })
}

t.test('200 WebSocket clients through a rolling reload: all told 1001, reconnected to new workers; a reply in flight arrives first', async (t) => {
  const cli = await cluster(t, [fixture('apps/ws.js')], 4, { WS_DRAIN: 'helper' }, { app: fixture('apps/ws.js'), workers: 4, shutdownTimeoutMs: 30_000 })
  const oldPids = new Set(cli.workerPids())
  const clients = Array.from({ length: 200 }, () => client(cli.port))
  await Promise.all(clients.map((c) => c.hello))
  // one client is mid-exchange when the drains start: its answer takes 2.5 s (if the close
  // came first, this resolves with undefined and the test fails instead of waiting)
  const slow = Promise.race([clients[0].ask(1, 2500), clients[0].closed.then(() => undefined)])
  const reloadAt = Date.now()
  cli.signal('SIGHUP')
  const codes = await Promise.all(clients.map((c) => c.closed))
  t.same(countCodes(codes), { 1001: 200 }, 'every client saw 1001 "going away", none 1006')
  t.ok(oldPids.has((await slow)!), 'the reply in flight arrived before the close')
  await cli.waitFor('reload.complete', undefined, 60_000)
  // each old worker exited once its clients were gone, not at the 30 s deadline, which
  // would have ended what was left (2 s before it) and said so in worker.exit; how
  // long the reload takes is the bench's realtime table
  for (const pid of oldPids) await cli.waitFor('worker.exit', (e) => e.pid === pid, 60_000)
  const drains = cli.events.filter((e) => e.event === 'worker.drain' && oldPids.has(e.pid))
  t.equal(drains.length, oldPids.size, 'every old worker drained')
  for (const drain of drains) {
    const exit = cli.events.find((e) => e.event === 'worker.exit' && e.pid === drain.pid)!
    const ms = Date.parse(exit.time) - Date.parse(drain.time)
    t.equal(exit.reason, 'drained', `worker ${drain.workerId} drained in ${ms} ms`)
    t.notOk(exit.connectionsDestroyed, 'nothing left for the deadline')
  }
  t.comment(`rolling reload with 200 WebSockets: ${Date.now() - reloadAt} ms until every old worker exited`)
  // they reconnect and talk to the new workers
  const again = Array.from({ length: 200 }, () => client(cli.port))
  const pids = await Promise.all(again.map((c, i) => c.hello.then(() => c.ask(i))))
  t.ok(pids.every((pid) => !oldPids.has(pid)), 'every reconnected client is answered by a new worker')
  t.equal(new Set(pids).size, 4, 'spread over the 4 new workers')
  // SIGTERM with the clients open: the same close codes, exit 0
  cli.signal('SIGTERM')
  t.same(countCodes(await Promise.all(again.map((c) => c.closed))), { 1001: 200 })
  t.equal(await cli.exited, 0)
})

t.test('an app that registered nothing: its WebSocket clients get 1001 after the idle grace, not a cut', async (t) => {
  const cli = await cluster(t, [fixture('apps/ws.js'), '-w', '2'], 2)
  const clients = Array.from({ length: 20 }, () => client(cli.port))
  await Promise.all(clients.map((c) => c.hello))
  const stoppedAt = Date.now()
  cli.signal('SIGTERM')
  const codes = await Promise.all(clients.map((c) => c.closed))
  const ms = Date.now() - stoppedAt
  t.comment(`no onDrain: clients closed ${ms} ms after SIGTERM`)
  t.same(countCodes(codes), { 1001: 20 }, 'every client saw 1001')
  t.equal(await cli.exited, 0)
})

t.test('connections still open at the deadline are ended by the worker and counted in worker.exit', async (t) => {
  // onDrain registered (so the sockets are the app's), but the app never closes them
  const cli = await cluster(t, [fixture('apps/ws.js')], 1, { WS_SAY_DRAIN: '1' }, { app: fixture('apps/ws.js'), workers: 1, shutdownTimeoutMs: 1500 })
  const clients = Array.from({ length: 3 }, () => client(cli.port))
  await Promise.all(clients.map((c) => c.hello))
  cli.signal('SIGTERM')
  t.same(countCodes(await Promise.all(clients.map((c) => c.closed))), { 1001: 3 }, 'ended at the deadline, still with 1001')
  t.equal(await cli.exited, 1, 'a drain cut short by its deadline makes the exit code 1')
  t.match(cli.events.find((e) => e.event === 'worker.killed'), { workerId: 0, connectionsDestroyed: 3 })
  t.match(cli.events.find((e) => e.event === 'worker.exit'), { reason: 'drain-timeout', connectionsDestroyed: 3, signal: null }, 'the worker ended them itself, before the kill')
  t.match(cli.events.find((e) => e.event === 'shutdown.complete'), { exitCode: 1, killed: 1 })
})

t.test('an upgrade request to a draining worker gets 503 with Retry-After before the app sees it', async (t) => {
  const cli = await cluster(t, [fixture('apps/ws.js'), '-w', '1'], 1, { WS_SAY_DRAIN: '1' })
  const socket = net.connect(cli.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.setEncoding('latin1').on('data', (c: string) => { received += c })
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await until(() => received.includes('\r\n\r\n') && received.includes('pid'), 'the first answer on the keep-alive connection')
  received = ''
  cli.signal('SIGTERM')
  await cli.waitFor('app.drain')
  // the idle keep-alive connection is kept for a grace: an upgrade on it now
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  await until(() => received.includes('\r\n\r\n'), 'an answer to the upgrade')
  t.match(received, /^HTTP\/1\.1 503 Service Unavailable\r\n/)
  t.match(received, /\r\nRetry-After: 1\r\n/)
  t.notMatch(received, /101 Switching/)
  // a raw client reads as much body as the response declares: the length must be true
  await until(() => socket.destroyed || socket.readableEnded, 'the refusal to end its connection')
  const [head, body] = [received.slice(0, received.indexOf('\r\n\r\n')), received.slice(received.indexOf('\r\n\r\n') + 4)]
  t.equal(Number(/\r\nContent-Length: (\d+)/.exec(head)?.[1]), Buffer.byteLength(body, 'latin1'), `Content-Length is the body's length (${JSON.stringify(body)})`)
  t.equal(await cli.exited, 0)
})

function ioClient (port: number, extra: Record<string, unknown> = {}): IoSocket {
  return connect(`http://127.0.0.1:${port}`, { transports: ['polling'], forceNew: true, reconnection: false, ...extra })
}

/** An acknowledged emit; one unanswered for 30 s fails (a deadline, not a speed). */
const ack = (socket: IoSocket, event: string, ...args: unknown[]): Promise<any> => socket.timeout(30_000).emitWithAck(event, ...args)

t.test('socket.io over long-polling, 100 clients x 20 messages under sticky: no "Session ID unknown"; a broadcast reaches every worker\'s clients', async (t) => {
  const port = await freePort()
  const cli = startCli(t, ['--config', fixture('socketio.config.mjs'), '-w', '4', '--scheduling-policy', 'sticky'], { env: { PORT: String(port), STICKY_HEADER: 'x-forwarded-for' } })
  await cli.untilReady(4)
  // behind a stand-in proxy: one source address, each client its own x-forwarded-for
  const clients = Array.from({ length: 100 }, (_, i) => ioClient(port, { extraHeaders: { 'x-forwarded-for': `198.51.100.${i}` } }))
  t.teardown(() => { for (const c of clients) c.disconnect() })
  await Promise.all(clients.map((c) => new Promise<void>((resolve, reject) => { c.once('connect', () => resolve()); c.once('connect_error', reject) })))
  const news = clients.map((c) => new Promise<number>((resolve) => c.once('news', resolve)))
  const pids = new Set<number>()
  await Promise.all(clients.map(async (c) => {
    for (let n = 0; n < 20; n++) pids.add((await ack(c, 'ping', n)).pid)
  }))
  t.equal(cli.events.filter((e) => e.event === 'app.session-unknown').length, 0, 'no request reached a worker that did not know its session')
  t.equal(pids.size, 4, 'the clients are spread over the 4 workers')
  await ack(clients[0], 'broadcast')
  const from = await Promise.all(news)
  t.equal(new Set(from).size, 1, 'one broadcast')
  t.equal(from.length, 100, 'reached all 100 clients, whatever worker holds them')
})

t.test('the same socket.io clients under rr: sessions break (so the test above can fail)', async (t) => {
  const port = await freePort()
  const cli = startCli(t, ['--config', fixture('socketio.config.mjs'), '-w', '4'], { env: { PORT: String(port) } })
  await cli.untilReady(4)
  const clients = Array.from({ length: 20 }, () => ioClient(port))
  t.teardown(() => { for (const c of clients) c.disconnect() })
  await Promise.all(clients.map(async (c) => {
    try {
      await new Promise<void>((resolve, reject) => { c.once('connect', () => resolve()); c.once('connect_error', reject) })
      for (let n = 0; n < 20; n++) await ack(c, 'ping', n)
    } catch {}
  }))
  const unknown = cli.events.filter((e) => e.event === 'app.session-unknown')
  t.ok(unknown.length > 0, `${unknown.length} polling requests reached a worker that did not know the session`)
  t.match(unknown[0], { message: 'Session ID unknown' })
})

t.test('an app whose package depends on socket.io: a warning at start unless the policy is sticky', async (t) => {
  const port = await freePort()
  const cwd = t.testdir({
    'package.json': JSON.stringify({ name: 'chat', dependencies: { 'socket.io': '^4.8.0', express: '^5.0.0' } }),
    'server.js': readFileSync(fixture('apps/http.js'), 'utf8'),
  })
  const cli = startCli(t, ['server.js', '-w', '1'], { cwd, env: { PORT: String(port) } })
  await cli.untilReady(1)
  t.match(cli.events.find((e) => e.event === 'config.warning'), { level: 40, key: 'schedulingPolicy', schedulingPolicy: 'rr', message: /depends on socket\.io .*400 Session ID unknown.*schedulingPolicy: 'sticky'/ })
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
  const sticky = startCli(t, ['server.js', '--check', '--scheduling-policy', 'sticky'], { cwd })
  t.equal(await sticky.exited, 0)
  t.equal(JSON.parse(sticky.stdout()).warnings, undefined, 'no warning under sticky')
})

t.test('sticky by header behind a proxy: spread over all workers; a key keeps its slot through a crash and a reload', async (t) => {
  const cli = await cluster(t, [], 4, {}, { app: fixture('apps/http.js'), workers: 4, schedulingPolicy: 'sticky', sticky: { by: { header: 'x-forwarded-for' } }, restartBackoff: { initialMs: 0, jitter: 0 } })
  const keys = Array.from({ length: 40 }, (_, i) => `203.0.113.${i}`)
  const slotOf = async (key: string): Promise<{ slot: string, pid: number }> => {
    const r = (await get(`http://127.0.0.1:${cli.port}/`, { headers: { 'x-forwarded-for': `${key}, 10.0.0.1` } })).json()
    return { slot: r.workerId, pid: r.pid }
  }
  const first = new Map<string, string>()
  for (const key of keys) {
    const a = await slotOf(key)
    const b = await slotOf(key)
    t.equal(b.slot, a.slot, `key ${key} stays on its slot`)
    first.set(key, a.slot)
  }
  t.same(new Set(first.values()), new Set(['0', '1', '2', '3']), 'the keys spread over all 4 workers')
  // kill slot 2's worker: its keys come back to slot 2's replacement
  const victim = cli.events.find((e) => e.event === 'worker.ready' && e.workerId === 2)!.pid
  process.kill(victim, 'SIGKILL')
  await cli.waitFor('worker.ready', (e) => e.workerId === 2 && e.pid !== victim)
  for (const key of keys) t.equal((await slotOf(key)).slot, first.get(key), `${key} after the crash`)
  cli.signal('SIGHUP')
  await cli.waitFor('reload.complete', undefined, 60_000)
  for (const key of keys) {
    const now = await slotOf(key)
    t.equal(now.slot, first.get(key), `${key} after the reload`)
  }
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})
