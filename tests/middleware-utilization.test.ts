// The load cluster's round-robin policy gives a worker: requests that arrive
// one at a time, each on a new connection, each running a synchronous
// handler. The lag of the current turn and the in-flight count stay low; the
// loop is busy nearly all the time, which maxEventLoopUtilization sees, and
// it is kept from turning on time turn after turn, which maxEventLoopDelayMs
// sees for a new connection. The server is a plain node:http server in this
// process, the client a separate process.
import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import { protect, type Guard, type HttpGuardOptions } from '../lib/middleware/index.js'
import { ELU_WINDOW_MS } from '../lib/middleware/loop-utilization.js'
import { get, serve, until } from './helpers/http.js'
import { captureLogs, type CapturedLogs } from './helpers/logs.js'
import { runTs } from './helpers/node.js'

const HANDLER_MS = 40
const CONNECTIONS = 100
const FLOOD_MS = 2000

function spin (ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* a synchronous handler */ }
}

interface Served { url: string, guard: Guard, logs: CapturedLogs, handled: () => number }

async function serveSpinning (t: Test, options: HttpGuardOptions): Promise<Served> {
  const logs = captureLogs()
  let handled = 0
  const listener = protect((_req, res) => {
    handled++
    spin(HANDLER_MS)
    res.writeHead(200, { 'content-type': 'text/plain' }).end('done')
  }, { ...options, logger: logs.logger })
  const { url } = await serve(t, listener, listener.guard)
  return { url, guard: listener.guard, logs, handled: () => handled }
}

interface Flood { statuses: number[], latencies: number[] }

/** Runs the sequential client against the server for FLOOD_MS; resolves with what it saw. */
async function flood (url: string): Promise<Flood> {
  // a client that hangs is killed at the deadline: it fails the test instead of the run
  const { code, stdout, stderr } = await runTs('tests/helpers/sequential-client.ts', [`${url}/`, String(CONNECTIONS), String(FLOOD_MS)], FLOOD_MS + 20_000)
  if (code !== 0) throw new Error(`the client exited with ${String(code)}: ${stderr}`)
  return JSON.parse(stdout) as Flood
}

/** Polls with a request until one is admitted; resolves with how long that took. */
async function acceptedWithin (url: string, timeoutMs: number): Promise<number> {
  const started = performance.now()
  await until(async () => (await get(`${url}/`)).status === 200, 'a request to be admitted after the flood', timeoutMs, 10)
  return performance.now() - started
}

/** "200×7 503×31 200×1 ...": the statuses as runs, for the test's comments. */
function runs (statuses: number[]): string {
  const parts: string[] = []
  let count = 0
  statuses.forEach((status, i) => {
    count++
    if (statuses[i + 1] !== status) {
      parts.push(`${status}×${count}`)
      count = 0
    }
  })
  return parts.join(' ')
}

/** The longest run of consecutive 200s after the first 503. */
function longestAdmittedRunAfterShedding (statuses: number[]): number {
  let longest = 0
  let run = 0
  for (const status of statuses.slice(statuses.indexOf(503))) {
    run = status === 200 ? run + 1 : 0
    longest = Math.max(longest, run)
  }
  return longest
}

t.test('maxEventLoopDelayMs alone: a request from out of sight is judged by how long the loop has been behind', async (t) => {
  // Each request comes alone on a new connection and sees no lag of the current turn
  // (the timer ran just before it was read), and one request in flight. A new
  // connection may have waited where the worker cannot see it (the kernel's accept
  // queue, the primary under round-robin) for as long as the loop has been kept from
  // turning on time, so it is judged by that. This client sends its next request only
  // once it has the answer: the loop mostly waits for it, which shows that nothing was
  // queued, and admits; when the next request was already there as the loop looked,
  // a row of handlers over 150 ms makes it shed, briefly. Either way the first
  // requests are admitted and a refusal is cheap.
  const { url, guard, logs, handled } = await serveSpinning(t, { maxEventLoopDelayMs: 150 })
  const { statuses, latencies } = await flood(url)
  const admitted = statuses.filter((s) => s === 200).length
  const shed = statuses.filter((s) => s === 503).length
  t.comment(`statuses as runs: ${runs(statuses)}`)
  t.ok(statuses.length >= 20, `${statuses.length} requests in ${FLOOD_MS} ms`)
  t.equal(admitted + shed, statuses.length, 'nothing but 200 and 503')
  t.equal(handled(), admitted, 'a refused request never reached the handler')
  t.same(statuses.slice(0, 4), [200, 200, 200, 200], 'never before the loop has been behind for more than 150 ms of handlers')
  if (shed > 0) {
    t.match(logs.events('overload.start')[0], { reason: 'maxEventLoopDelayMs', limit: 150 })
    const refusedMs = latencies.filter((_, i) => statuses[i] === 503)
    t.ok(Math.max(...refusedMs) < HANDLER_MS * 3, `a refusal waits at most for the handler before it: ${Math.max(...refusedMs)} ms`)
  }
  const tookMs = await acceptedWithin(url, 5000)
  t.ok(tookMs < 1000, `admitted ${Math.round(tookMs)} ms after the flood`)
  await until(() => guard.stats().state === 'ok', 'the overload episode to end', 5000)
})

t.test('maxEventLoopUtilization sheds them, and admits again once the flood is over', async (t) => {
  // alone, so that every episode is its own (with maxEventLoopDelayMs too, either may start one)
  const { url, guard, logs, handled } = await serveSpinning(t, { maxEventLoopUtilization: 0.9 })
  const { statuses, latencies } = await flood(url)
  const admitted = statuses.filter((s) => s === 200).length
  const shed = statuses.filter((s) => s === 503).length
  t.equal(admitted + shed, statuses.length, 'nothing but 200 and 503')
  t.ok(shed > 0, `${shed} shed, ${admitted} admitted`)
  t.ok(admitted > 0, 'the loop was not busy from the start')
  t.equal(handled(), admitted, 'a refused request never reached the handler')
  const starts = logs.events('overload.start')
  t.ok(starts.length > 0)
  t.match(starts[0], { reason: 'maxEventLoopUtilization', limit: 0.9 })
  t.ok((starts[0]?.value as number) > 0.9, `started at ${String(starts[0]?.value)}`)

  // a 503 is cheap, so the loop idles between refusals and admits a request
  // again soon; it never admits a whole window's worth of handlers in a row
  t.comment(`statuses as runs: ${runs(statuses)}`)
  const longest = longestAdmittedRunAfterShedding(statuses)
  t.ok(longest * HANDLER_MS < ELU_WINDOW_MS + HANDLER_MS, `longest run of admitted requests once shedding began: ${longest}`)
  const refusedMs = latencies.filter((_, i) => statuses[i] === 503)
  t.ok(Math.max(...refusedMs) < HANDLER_MS * 3, `a refusal waits at most for the handler before it: ${Math.max(...refusedMs)} ms`)

  // the load is gone: a request is admitted, and the episode ends after recoveryMs
  const tookMs = await acceptedWithin(url, 5000)
  t.ok(tookMs < 1000, `admitted ${Math.round(tookMs)} ms after the flood`)
  await until(() => guard.stats().state === 'ok', 'the overload episode to end', 5000)
  t.match(logs.events('overload.end').at(-1), { reason: 'maxEventLoopUtilization' })
})
