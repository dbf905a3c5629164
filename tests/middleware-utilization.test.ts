// The load cluster's round-robin policy gives a worker: requests that arrive
// one at a time, each on a new connection, each running a synchronous
// handler. The lag of the current turn and the in-flight count stay low; the
// loop is busy nearly all the time, which maxEventLoopUtilization sees, and
// it is kept from turning on time turn after turn, which maxEventLoopDelayMs
// sees for a new connection. The server is a plain node:http server in this
// process, the client a separate process.
//
// What is asserted does not depend on how fast this machine is: the client
// sends a fixed number of requests, and the server records, for each request
// in the order it read them, the guard's decision and how long its loop had
// waited for I/O since the previous one. Latencies seen by the client are
// printed, not judged.
import { performance } from 'node:perf_hooks'
import type { IncomingMessage, ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { protect, type Guard, type HttpGuardOptions } from '../lib/middleware/index.js'
import { ELU_WINDOW_MS } from '../lib/middleware/loop-utilization.js'
import { get, serve, until } from './helpers/http.js'
import { captureLogs, type CapturedLogs } from './helpers/logs.js'
import { runTs } from './helpers/node.js'
import { FILE_TIMEOUT_MS } from './helpers/cli.js'

t.setTimeout(FILE_TIMEOUT_MS)

const HANDLER_MS = 40
/**
 * Handlers of 40 ms with less idle time than this between them keep the loop over
 * 93 % busy: a window's worth of them must make the guard shed. More idle time in
 * between is a client that was slow to send the next one (on a busy machine, one
 * that waited for a CPU), and then the guard rightly admits.
 */
const NO_WAIT_MS = 3

function spin (ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* a synchronous handler */ }
}

/** One request as the server saw it: the status it answered, whether the answer was written before the listener returned, and the loop's idle time (ms) since the previous request. */
interface Seen { status: number, endedAtOnce: boolean, idleBeforeMs: number }

interface Served { url: string, guard: Guard, logs: CapturedLogs, handled: () => number, seen: Seen[] }

async function serveSpinning (t: Test, options: HttpGuardOptions): Promise<Served> {
  const logs = captureLogs()
  let handled = 0
  const guarded = protect((_req, res) => {
    handled++
    spin(HANDLER_MS)
    res.writeHead(200, { 'content-type': 'text/plain' }).end('done')
  }, { ...options, logger: logs.logger })
  const seen: Seen[] = []
  let idleAt = performance.nodeTiming.idleTime
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const idle = performance.nodeTiming.idleTime
    guarded(req, res)
    seen.push({ status: res.statusCode, endedAtOnce: res.writableEnded, idleBeforeMs: idle - idleAt })
    idleAt = idle
  }
  const { url } = await serve(t, listener, guarded.guard)
  return { url, guard: guarded.guard, logs, handled: () => handled, seen }
}

interface Flood { statuses: number[], latencies: number[] }

/**
 * Runs the sequential client against the server for `requests` requests, each on a
 * connection of its own (none is reused, so none can meet the server's keep-alive
 * timeout however slowly the flood goes); resolves with what it saw.
 */
async function flood (url: string, requests: number): Promise<Flood> {
  // a client that hangs is killed at the deadline: it fails the test instead of the run
  const { code, stdout, stderr } = await runTs('tests/helpers/sequential-client.ts', [`${url}/`, String(requests), String(requests)], 90_000)
  if (code !== 0) throw new Error(`the client exited with ${String(code)}: ${stderr}`)
  return JSON.parse(stdout) as Flood
}

/** Polls with a request until one is admitted; resolves with how long that took. */
async function acceptedAfter (url: string): Promise<number> {
  const started = performance.now()
  await until(async () => (await get(`${url}/`)).status === 200, 'a request to be admitted after the flood', 20_000, 10)
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

/**
 * The longest run of consecutive 200s (after the first 503 with `afterShedding`);
 * with `backToBack`, a run also ends at a request the loop had waited for
 * (NO_WAIT_MS or more of idle time before it): what counts then is handlers that
 * kept the loop busy one after the other.
 */
function longestAdmittedRun (seen: Seen[], { afterShedding = false, backToBack = false } = {}): number {
  let longest = 0
  let run = 0
  for (const s of afterShedding ? seen.slice(seen.findIndex((x) => x.status === 503)) : seen) {
    if (s.status !== 200) run = 0
    else run = backToBack && s.idleBeforeMs >= NO_WAIT_MS ? 1 : run + 1
    longest = Math.max(longest, run)
  }
  return longest
}

/** What both tests check of every request: the client saw what the server answered; a refusal never ran the handler and was written at once. */
function checkAnswers (t: Test, served: Served, { statuses }: Flood, requests: number): void {
  t.equal(statuses.length, requests, `${requests} requests answered`)
  t.same(served.seen.map((s) => s.status), statuses, 'the server answered each request as the client saw it, in order')
  t.equal(statuses.filter((s) => s !== 200 && s !== 503).length, 0, 'nothing but 200 and 503')
  t.equal(served.handled(), statuses.filter((s) => s === 200).length, 'a refused request never reached the handler')
  t.ok(served.seen.every((s) => s.endedAtOnce), 'every answer, a refusal too, was written in the turn its request was read')
}

/** The refusals' latencies at the client, for the comments (judged by the bench, not here). */
function refusalLatency ({ statuses, latencies }: Flood): string {
  const refusedMs = latencies.filter((_, i) => statuses[i] === 503)
  return refusedMs.length === 0 ? 'no refusal' : `refusals answered in at most ${Math.max(...refusedMs)} ms at the client (handler ${HANDLER_MS} ms)`
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
  // request is admitted and a refusal is cheap.
  const requests = 50
  const served = await serveSpinning(t, { maxEventLoopDelayMs: 150 })
  const result = await flood(served.url, requests)
  const shed = result.statuses.filter((s) => s === 503).length
  t.comment(`statuses as runs: ${runs(result.statuses)}; ${refusalLatency(result)}`)
  checkAnswers(t, served, result, requests)
  t.equal(result.statuses[0], 200, 'the first request, to a loop that was not behind, is admitted')
  if (shed > 0) {
    const [start] = served.logs.events('overload.start')
    t.match(start, { reason: 'maxEventLoopDelayMs', limit: 150 })
    t.ok((start?.value as number) >= 150, `shed only once the loop was behind by more than the limit (${String(start?.value)} ms)`)
  }
  const tookMs = await acceptedAfter(served.url)
  t.comment(`admitted ${Math.round(tookMs)} ms after the flood`)
  await until(() => served.guard.stats().state === 'ok', 'the overload episode to end', 20_000)
})

t.test('maxEventLoopUtilization sheds them, and admits again once the flood is over', async (t) => {
  // alone, so that every episode is its own (with maxEventLoopDelayMs too, either may start one)
  const requests = 150
  const served = await serveSpinning(t, { maxEventLoopUtilization: 0.9 })
  const result = await flood(served.url, requests)
  const admitted = result.statuses.filter((s) => s === 200).length
  const shed = result.statuses.filter((s) => s === 503).length
  checkAnswers(t, served, result, requests)
  t.ok(shed > 0, `${shed} shed, ${admitted} admitted`)
  t.equal(result.statuses[0], 200, 'the loop was not busy from the start')
  const starts = served.logs.events('overload.start')
  t.ok(starts.length > 0)
  t.match(starts[0], { reason: 'maxEventLoopUtilization', limit: 0.9 })
  t.ok((starts[0]?.value as number) > 0.9, `started at ${String(starts[0]?.value)}`)

  // a 503 is cheap, so the loop idles between refusals and admits a request again
  // soon; it never runs more than a window's worth of handlers back to back, from the
  // first request on (a run of admitted requests the loop waited for in between is
  // the machine's pace, not the guard's: a client slowed by other processes leaves
  // the loop idle, and then the guard rightly admits)
  const firstShed = result.statuses.indexOf(503)
  t.ok(result.statuses.slice(firstShed).includes(200), 'admitted again after shedding began')
  const busyRun = longestAdmittedRun(served.seen, { backToBack: true })
  t.comment(`statuses as runs: ${runs(result.statuses)}; longest run of admitted requests once shedding began: ` +
    `${longestAdmittedRun(served.seen, { afterShedding: true })}; longest run of handlers back to back: ${busyRun}; ${refusalLatency(result)}`)
  t.ok(busyRun * HANDLER_MS < ELU_WINDOW_MS + HANDLER_MS, `longest run of handlers back to back: ${busyRun}`)

  // the load is gone: a request is admitted, and the episode ends after recoveryMs
  const tookMs = await acceptedAfter(served.url)
  t.comment(`admitted ${Math.round(tookMs)} ms after the flood`)
  await until(() => served.guard.stats().state === 'ok', 'the overload episode to end', 20_000)
  t.match(served.logs.events('overload.end').at(-1), { reason: 'maxEventLoopUtilization' })
})
