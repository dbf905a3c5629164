// The pure pieces of the middleware, and the core Guard driven with a fake
// clock, fake memory readings and a private worker state.
import { EventEmitter, once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { newWorkerState } from '../lib/worker/state.js'
import { guardWithSeams } from '../lib/middleware/guard.js'
import { firstExceeded } from '../lib/middleware/limits.js'
import { eventLoopLag, LoopTicker } from '../lib/middleware/loop-lag.js'
import { utilizationBetween, UtilizationWindow, type EluReading } from '../lib/middleware/loop-utilization.js'
import { MemorySampler, type MemoryReading } from '../lib/middleware/memory.js'
import { preferredFormat } from '../lib/middleware/negotiate.js'
import { MiddlewareOptionsError } from '../lib/middleware/options-error.js'
import { guardOptionsSchema, parseOptions } from '../lib/middleware/options.js'
import { OverloadTracker } from '../lib/middleware/overload.js'
import { MESSAGES, refusalError, renderError, type GuardReply } from '../lib/middleware/responses.js'
import { closest as closestKey, describeValue } from '../lib/common/issues.js'
import { thrown } from './helpers/errors.js'
import { captureLogs } from './helpers/logs.js'

t.test('eventLoopLag: time the next tick is overdue, never negative', async (t) => {
  t.equal(eventLoopLag(100, 50, 10), 40)
  t.equal(eventLoopLag(60, 50, 10), 0, 'on time')
  t.equal(eventLoopLag(55, 50, 10), 0, 'not due yet')
  t.equal(eventLoopLag(1050.5, 0, 10), 1040.5)
})

t.test('LoopTicker sees a stall while it is happening, and reports it after', async (t) => {
  // the ticker's timer is unref'd: something else must keep this test process alive
  const keepAlive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keepAlive))
  const ticks = new EventEmitter()
  const ticker = new LoopTicker((now, lateness) => ticks.emit('tick', now, lateness), 5)
  t.teardown(() => ticker.stop())
  t.equal(ticker.hasRef(), false, 'the timer does not keep the process alive')
  await once(ticks, 'tick')
  const start = performance.now()
  while (performance.now() - start < 100) { /* block the loop */ }
  t.ok(ticker.lag() >= 90, 'lag grows while the loop is blocked, before any tick can run')
  const [tickAt, lateness] = await once(ticks, 'tick') as [number, number]
  t.ok(lateness >= 90, 'the next tick reports how late it ran')
  // counted from that tick on, however long this process then waits for a CPU
  const lag = ticker.lag()
  t.ok(lag <= performance.now() - tickAt, `and lag drops back once the loop turns: ${lag.toFixed(1)} ms since the tick that ran ${lateness.toFixed(1)} ms late`)
})

t.test('MemorySampler reads at most once per interval', async (t) => {
  let reads = 0
  let heapUsed = 100
  const sampler = new MemorySampler(100, (): MemoryReading => { reads++; return { heapUsed, rss: 1000 } })
  t.same(sampler.get(0), { heapUsed: 100, rss: 1000 })
  heapUsed = 200
  t.same(sampler.get(99), { heapUsed: 100, rss: 1000 }, 'cached inside the interval')
  t.equal(reads, 1)
  t.same(sampler.get(100), { heapUsed: 200, rss: 1000 })
  t.equal(reads, 2)
})

t.test('utilizationBetween: active share of the time between two cumulative readings', async (t) => {
  t.equal(utilizationBetween({ idle: 100, active: 50 }, { idle: 125, active: 125 }), 0.75)
  t.equal(utilizationBetween({ idle: 100, active: 50 }, { idle: 200, active: 50 }), 0, 'all idle')
  t.equal(utilizationBetween({ idle: 100, active: 50 }, { idle: 100, active: 350 }), 1, 'all active')
  t.equal(utilizationBetween({ idle: 100, active: 50 }, { idle: 100, active: 50 }), 0, 'no time passed')
  t.equal(utilizationBetween({ idle: 0, active: 0 }, { idle: 0, active: 0 }), 0, 'the loop has not started')
})

/** Cumulative readings driven by hand: idle and active ms added as the test goes. */
function fakeLoop (): { read: () => EluReading, busy: (ms: number) => void, idle: (ms: number) => void, reads: () => number } {
  const at = { idle: 0, active: 0 }
  let reads = 0
  return {
    read: () => { reads++; return { ...at } },
    busy: (ms) => { at.active += ms },
    idle: (ms) => { at.idle += ms },
    reads: () => reads,
  }
}

t.test('UtilizationWindow: a sliding window of loop time, measured up to the moment of asking', async (t) => {
  const loop = fakeLoop()
  const window = new UtilizationWindow(300, loop.read)
  t.equal(window.windowMs, 300)
  loop.busy(140)
  t.equal(window.current(), 0, 'less than half a window of history: no verdict yet')
  loop.busy(10)
  t.equal(window.current(), 1, 'half a window, all of it busy')

  // a quiet loop sampled by the tick every 10 ms
  for (let i = 0; i < 100; i++) { loop.idle(9); loop.busy(1); window.sample() }
  t.equal(Math.round(window.current() * 100), 10, 'the busy start-up has slid out')

  // one long stretch of handlers, no tick in between: the request inside it sees it
  loop.busy(200)
  const during = window.current()
  t.ok(during > 0.6 && during < 0.75, `200 ms busy after a quiet loop: ${during}`)
  loop.busy(100)
  t.ok(window.current() > 0.9, '300 ms into the stall: over 0.9 before any timer could run')

  // the load is gone: idle time pushes it back down within the window
  loop.idle(30)
  t.ok(window.current() < 0.9, 'clear again after a short idle stretch')
  for (let i = 0; i < 40; i++) { loop.idle(10); window.sample() }
  t.equal(window.current(), 0, 'a whole window idle')
})

t.test('UtilizationWindow: sparse samples stretch the window back to the last reading old enough', async (t) => {
  const loop = fakeLoop()
  const window = new UtilizationWindow(300, loop.read)
  loop.idle(1000)
  window.sample()
  // 41 ms handlers, one per loop turn, a sample at each turn (the tick runs late, between them)
  for (let i = 0; i < 20; i++) {
    loop.busy(41)
    loop.idle(1)
    window.sample()
  }
  const u = window.current()
  t.ok(u > 0.97 && u < 0.98, `over the last 300+ ms, not since the quiet start: ${u}`)
  // a stall longer than the window: the newest kept reading is already old enough
  loop.busy(1000)
  t.ok(window.current() > 0.99)
  t.ok(loop.reads() < 30, 'one reading per call')
})

t.test('firstExceeded checks each configured limit, cheapest first', async (t) => {
  const calm = { inflight: 1, lagMs: 0, utilization: 0.5, heapUsed: 10, rss: 10 }
  t.equal(firstExceeded(calm, {}), null, 'no limits, never exceeded')
  t.equal(firstExceeded({ ...calm, inflight: 5 }, { maxInFlight: 5 }), null, 'the limit itself is allowed')
  t.same(firstExceeded({ ...calm, inflight: 6 }, { maxInFlight: 5 }), { reason: 'maxInFlight', value: 6, limit: 5 })
  t.same(firstExceeded({ ...calm, lagMs: 150.26 }, { maxEventLoopDelayMs: 100 }), { reason: 'maxEventLoopDelayMs', value: 150.3, limit: 100 })
  t.equal(firstExceeded({ ...calm, lagMs: 100 }, { maxEventLoopDelayMs: 100 }), null, 'the limit itself is allowed')
  t.same(firstExceeded({ ...calm, lagMs: 100.03 }, { maxEventLoopDelayMs: 100 }), { reason: 'maxEventLoopDelayMs', value: 100.1, limit: 100 },
    'reported rounded up, so it never reads as equal to its limit')
  t.same(firstExceeded({ ...calm, heapUsed: 11 }, { maxHeapUsedBytes: 10 }), { reason: 'maxHeapUsedBytes', value: 11, limit: 10 })
  t.same(firstExceeded({ ...calm, rss: 11 }, { maxRssBytes: 10 }), { reason: 'maxRssBytes', value: 11, limit: 10 })
  t.equal(firstExceeded({ ...calm, utilization: 0.9 }, { maxEventLoopUtilization: 0.9 }), null, 'the limit itself is allowed')
  t.same(firstExceeded({ ...calm, utilization: 0.90004 }, { maxEventLoopUtilization: 0.9 }), { reason: 'maxEventLoopUtilization', value: 0.901, limit: 0.9 },
    'reported rounded up, so it never reads as equal to its limit')
  t.equal(firstExceeded({ ...calm, utilization: 1 }, { maxEventLoopUtilization: 1 }), null, '1 never sheds')
  const all = { maxInFlight: 1, maxEventLoopDelayMs: 1, maxEventLoopUtilization: 0.5, maxHeapUsedBytes: 1, maxRssBytes: 1 }
  t.equal(firstExceeded({ inflight: 2, lagMs: 2, utilization: 1, heapUsed: 2, rss: 2 }, all)?.reason, 'maxInFlight')
  t.equal(firstExceeded({ inflight: 1, lagMs: 2, utilization: 1, heapUsed: 2, rss: 2 }, all)?.reason, 'maxEventLoopDelayMs')
  t.equal(firstExceeded({ inflight: 1, lagMs: 0, utilization: 1, heapUsed: 2, rss: 2 }, all)?.reason, 'maxEventLoopUtilization')
  t.equal(firstExceeded({ inflight: 1, lagMs: 0, utilization: 0.5, heapUsed: 2, rss: 2 }, all)?.reason, 'maxHeapUsedBytes')
})

t.test('OverloadTracker: one episode per stall, ended after the recovery time', async (t) => {
  const tracker = new OverloadTracker(1000)
  const inflight = { reason: 'maxInFlight' as const, value: 3, limit: 2 }
  const lag = { reason: 'maxEventLoopDelayMs' as const, value: 150, limit: 100 }
  t.equal(tracker.clear(0), null, 'nothing to end')
  t.match(tracker.exceeded(100, inflight), { start: inflight, since: 100 }, 'the first exceedance starts an episode')
  tracker.recordShed()
  t.equal(tracker.exceeded(200, lag), null, 'later exceedances extend it')
  tracker.recordShed()
  tracker.recordShed()
  t.match(tracker.current, { start: inflight, latest: lag, lastExceededAt: 200, shed: 3 })
  t.equal(tracker.clear(1199), null, 'clear, but not for long enough')
  t.ok(tracker.active)
  t.same(tracker.clear(1200), { start: inflight, durationMs: 1100, shed: 3 })
  t.notOk(tracker.active)
  t.ok(tracker.exceeded(5000, lag), 'a new stall is a new episode')
  tracker.recordShed()
  t.equal(tracker.episodes, 2)
  t.equal(tracker.shed, 4, 'total over all episodes')
  t.same(new OverloadTracker(0).clear(0), null)
})

t.test('preferredFormat: JSON unless plain text ranks higher', async (t) => {
  t.equal(preferredFormat(undefined), 'json')
  t.equal(preferredFormat(''), 'json')
  t.equal(preferredFormat('application/json'), 'json')
  t.equal(preferredFormat('*/*'), 'json', 'a tie gives JSON')
  t.equal(preferredFormat('text/plain'), 'text')
  t.equal(preferredFormat('text/*'), 'text')
  t.equal(preferredFormat('application/json;q=0.5, text/plain'), 'text')
  t.equal(preferredFormat('text/plain;q=0.5, application/json'), 'json')
  t.equal(preferredFormat('TEXT/PLAIN'), 'text', 'case-insensitive')
  t.equal(preferredFormat('application/json;q=0, */*'), 'text', 'the most specific range wins')
  t.equal(preferredFormat('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'), 'json', 'a browser gets JSON')
  t.equal(preferredFormat('text/plain; q=bogus, application/json;q=0.1'), 'json', 'an unreadable q counts as 0')
})

t.test('options: defaults and validation messages', async (t) => {
  const defaults = parseOptions(guardOptionsSchema, undefined)
  t.match(defaults, {
    retryAfterSeconds: 5,
    livenessPath: '/healthz',
    readinessPath: '/readyz',
    errors: 'respond',
    recoveryMs: 1000,
    memorySampleIntervalMs: 250,
  })
  t.equal(defaults.maxInFlight, undefined, 'every limit is optional')

  const issuesOf = (input: unknown): string[] =>
    thrown(t, () => parseOptions(guardOptionsSchema, input), MiddlewareOptionsError, { name: 'MiddlewareOptionsError' }, 'parseOptions').issues

  t.same(issuesOf({ maxInFlight: '10' }), ['maxInFlight: expected an integer >= 1 (given: "10")'])
  t.same(issuesOf({ maxInFlight: 1.5 }), ['maxInFlight: expected an integer >= 1 (given: 1.5)'])
  t.same(issuesOf({ maxEventLoopDelayMs: -1 }), ['maxEventLoopDelayMs: expected a number of milliseconds > 0 (given: -1)'])
  t.same(issuesOf({ maxRssBytes: Number.NaN }), ['maxRssBytes: expected an integer number of bytes >= 1 (given: null)'])
  const fraction = 'expected a number > 0 and <= 1 (a share of the time, e.g. 0.98)'
  t.same(issuesOf({ maxEventLoopUtilization: 0 }), [`maxEventLoopUtilization: ${fraction} (given: 0)`])
  t.same(issuesOf({ maxEventLoopUtilization: 98 }), [`maxEventLoopUtilization: ${fraction} (given: 98)`], 'a percentage is not a share')
  t.same(issuesOf({ maxEventLoopUtilization: '0.9' }), [`maxEventLoopUtilization: ${fraction} (given: "0.9")`])
  t.same(issuesOf({ maxEventLoopUtilisation: 0.9 }), ['maxEventLoopUtilisation: unknown key, did you mean "maxEventLoopUtilization"? (given: 0.9)'])
  t.equal(parseOptions(guardOptionsSchema, { maxEventLoopUtilization: 1 }).maxEventLoopUtilization, 1)
  t.equal(parseOptions(guardOptionsSchema, { maxEventLoopUtilization: 0.98 }).maxEventLoopUtilization, 0.98)
  t.equal(defaults.maxEventLoopUtilization, undefined, 'off unless set')
  t.same(issuesOf({ retryAfterSeconds: -5 }), ['retryAfterSeconds: expected an integer number of seconds between 0 and 86400 (given: -5)'])
  t.same(issuesOf({ memorySampleIntervalMs: 10 }), ['memorySampleIntervalMs: expected an integer number of milliseconds between 100 and 10000 (given: 10)'])
  t.same(issuesOf({ livenessPath: 'healthz' }), ['livenessPath: expected a path starting with "/" (no query string), or false to disable (given: "healthz")'])
  t.same(issuesOf({ readinessPath: true }), ['readinessPath: expected a path starting with "/" (no query string), or false to disable (given: true)'])
  t.same(issuesOf({ livenessPath: '/health', readinessPath: '/health' }), ['readinessPath: expected a path different from livenessPath (given: "/health")'])
  t.same(issuesOf({ errors: 'throw' }), ['errors: expected "respond" or "delegate" (given: "throw")'])
  t.same(issuesOf({ logger: console.log }), ['logger: expected a pino logger (an object with info() and warn() methods) (given: a function)'])
  t.same(issuesOf({ maxinflight: 1, colour: 'red' }), [
    'maxinflight: unknown key, did you mean "maxInFlight"? (given: 1)',
    'colour: unknown key (given: "red")',
  ])
  t.same(issuesOf(42), ['(root): Invalid input: expected object, received number (given: 42)'])
  t.same(issuesOf({ maxInFlight: 0, maxRssBytes: 'lots' }), [
    'maxInFlight: expected an integer >= 1 (given: 0)',
    'maxRssBytes: expected an integer number of bytes >= 1 (given: "lots")',
  ], 'every problem at once')
  t.match(new MiddlewareOptionsError(['a: b (given: 1)']).message, /invalid cluster-run middleware options:\n {2}- a: b \(given: 1\)/)
})

t.test('describeValue and closestKey', async (t) => {
  const circular: Record<string, unknown> = {}
  circular.self = circular
  t.equal(describeValue(circular), '[object Object]')
  t.equal(describeValue(undefined), 'nothing')
  t.equal(describeValue(10n), '10n')
  t.equal(describeValue('x'.repeat(200)).length, 80)
  t.equal(closestKey('maxInflight', ['maxInFlight', 'maxRssBytes']), 'maxInFlight')
  t.equal(closestKey('banana', ['maxInFlight']), undefined)
})

t.test('refusals are http-errors errors rendered as JSON or text', async (t) => {
  const err = refusalError('maxInFlight', 3, false)
  t.match(err, { status: 503, statusCode: 503, expose: true, reason: 'maxInFlight', message: MESSAGES.overloaded, headers: { 'Retry-After': '3' } })
  t.equal(err.name, 'ServiceUnavailableError')
  const json = renderError(err, 'json')
  t.equal(json.statusCode, 503)
  t.same(JSON.parse(json.body), { statusCode: 503, error: 'Service Unavailable', message: MESSAGES.overloaded })
  t.match(json.headers, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': '3', 'Content-Length': String(json.body.length) })
  t.notOk('Connection' in json.headers)
  const text = renderError(refusalError('draining', 0, true), 'text')
  t.equal(text.body, `${MESSAGES.draining}\n`)
  t.match(text.headers, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '0', Connection: 'close' })
})

// A request and response as the guard sees them; the guard only reads these fields.
function fakeRequest (url = '/', accept?: string, method = 'GET'): IncomingMessage {
  return { url, method, headers: accept === undefined ? {} : { accept } } as unknown as IncomingMessage
}

function fakeResponse (): ServerResponse & { set: Record<string, string> } {
  const set: Record<string, string> = {}
  return Object.assign(new EventEmitter(), {
    destroyed: false,
    headersSent: false,
    set,
    setHeader (name: string, value: string) { set[name] = value },
  }) as unknown as ServerResponse & { set: Record<string, string> }
}

const privateState = newWorkerState

t.test('Guard: memory limits shed on sampled readings, and the episode is logged once', async (t) => {
  let now = 0
  let memory = { heapUsed: 900, rss: 5000 }
  let reads = 0
  const logs = captureLogs()
  const guard = guardWithSeams(
    { maxHeapUsedBytes: 1000, maxRssBytes: 10_000, recoveryMs: 500, memorySampleIntervalMs: 100, logger: logs.logger },
    { clock: () => now, readMemory: () => { reads++; return memory }, state: privateState(), tickMs: 60_000 }
  )
  t.teardown(() => guard.close())

  t.equal(guard.handle(fakeRequest(), fakeResponse()), undefined, 'under the limits: admitted')
  memory = { heapUsed: 2000, rss: 5000 }
  now = 50
  t.equal(guard.handle(fakeRequest(), fakeResponse()), undefined, 'the sample is still fresh')
  now = 100
  const refused = guard.handle(fakeRequest(), fakeResponse()) as GuardReply
  t.equal(refused.statusCode, 503)
  t.same(JSON.parse(refused.body), { statusCode: 503, error: 'Service Unavailable', message: MESSAGES.overloaded })
  now = 150
  t.equal((guard.handle(fakeRequest('/', 'text/plain'), fakeResponse()) as GuardReply).body, `${MESSAGES.overloaded}\n`)
  t.equal(reads, 2, 'memory read once per interval, not per request')
  t.match(guard.stats(), { state: 'overloaded', shed: 2, overloadEpisodes: 1, overload: { reason: 'maxHeapUsedBytes', value: 2000, limit: 1000, durationMs: 50, shed: 2 } })

  memory = { heapUsed: 900, rss: 20_000 }
  now = 200
  t.equal((guard.handle(fakeRequest(), fakeResponse()) as GuardReply).statusCode, 503, 'RSS over its limit')
  memory = { heapUsed: 900, rss: 5000 }
  now = 300
  t.equal(guard.handle(fakeRequest(), fakeResponse()), undefined, 'clear again: admitted at once')
  t.equal(guard.stats().state, 'overloaded', 'but the episode waits for the recovery time')
  now = 700
  t.equal(guard.handle(fakeRequest(), fakeResponse()), undefined)
  t.equal(guard.stats().state, 'ok')

  t.same(logs.events('overload.start').map(({ reason, value, limit }) => ({ reason, value, limit })), [{ reason: 'maxHeapUsedBytes', value: 2000, limit: 1000 }])
  t.same(logs.events('overload.end').map(({ reason, durationMs, shed }) => ({ reason, durationMs, shed })), [{ reason: 'maxHeapUsedBytes', durationMs: 600, shed: 3 }])
})

t.test('Guard: maxEventLoopUtilization sheds while the loop is busy, and lets go once it idles', async (t) => {
  let now = 0
  const loop = fakeLoop()
  const logs = captureLogs()
  const guard = guardWithSeams(
    { maxEventLoopUtilization: 0.9, recoveryMs: 500, logger: logs.logger },
    { clock: () => now, readUtilization: loop.read, state: privateState(), tickMs: 60_000, utilizationWindowMs: 300 }
  )
  t.teardown(() => guard.close())
  loop.idle(1000)
  t.equal(guard.handle(fakeRequest(), fakeResponse()), undefined, 'an idle loop: admitted')

  // requests that arrive one per loop turn, each followed by 41 ms of handler: no lag, one in flight
  const decisions: string[] = []
  for (let i = 0; i < 12; i++) {
    const res = fakeResponse()
    decisions.push(guard.handle(fakeRequest(), res) === undefined ? 'admit' : 'shed')
    res.emit('close')
    loop.busy(41)
    loop.idle(0.5)
    now += 41.5
  }
  const firstShed = decisions.indexOf('shed')
  // from an idle loop, 0.9 x 300 ms of handlers: the 7th or 8th request of 41 ms is the first refused
  t.ok(firstShed >= 6 && firstShed <= 8, `admitted until 90 % of the window was busy: ${decisions.join(' ')}`)
  t.notOk(decisions.slice(firstShed).includes('admit'), 'then shed while the loop stays busy')
  const shed = decisions.length - firstShed
  t.match(guard.stats(), { state: 'overloaded', overload: { reason: 'maxEventLoopUtilization', limit: 0.9 } })
  const ready = guard.handle(fakeRequest('/readyz'), fakeResponse()) as GuardReply
  t.equal(ready.statusCode, 503)
  t.same(JSON.parse(ready.body), { status: 'overloaded', reason: 'maxEventLoopUtilization' })

  // shedding is cheap: the loop idles between refusals and soon admits again
  loop.idle(40)
  now += 40
  t.equal(guard.handle(fakeRequest(), fakeResponse()), undefined, 'admitted once the window is below the limit')
  t.equal(guard.stats().state, 'overloaded', 'the episode waits for the recovery time')
  loop.idle(500)
  now += 500
  t.equal(guard.handle(fakeRequest(), fakeResponse()), undefined)
  t.equal(guard.stats().state, 'ok')
  t.equal((guard.handle(fakeRequest('/readyz'), fakeResponse()) as GuardReply).statusCode, 200)

  const [start] = logs.events('overload.start')
  t.match(start, { reason: 'maxEventLoopUtilization', limit: 0.9 })
  t.ok((start?.value as number) > 0.9 && (start?.value as number) <= 1, `logged value ${String(start?.value)}`)
  t.match(logs.events('overload.end'), [{ reason: 'maxEventLoopUtilization', shed }])
})

t.test('Guard: without maxEventLoopUtilization the loop utilization is never read', async (t) => {
  const loop = fakeLoop()
  const guard = guardWithSeams({ maxInFlight: 10, logger: captureLogs().logger }, { readUtilization: loop.read, state: privateState() })
  guard.handle(fakeRequest(), fakeResponse())
  guard.close()
  t.equal(loop.reads(), 0)
})

t.test('Guard: readiness reflects capacity without starting an episode', async (t) => {
  const guard = guardWithSeams({ maxInFlight: 1, logger: captureLogs().logger }, { state: privateState() })
  t.teardown(() => guard.close())
  const res = fakeResponse()
  t.equal(guard.handle(fakeRequest(), res), undefined)
  const ready = guard.handle(fakeRequest('/readyz'), fakeResponse()) as GuardReply
  t.equal(ready.statusCode, 503)
  t.same(JSON.parse(ready.body), { status: 'overloaded', reason: 'maxInFlight' })
  t.equal(guard.stats().overloadEpisodes, 0, 'a probe only looks')
  t.equal((guard.handle(fakeRequest('/healthz'), fakeResponse()) as GuardReply).statusCode, 200)
  res.emit('close')
  t.equal(guard.stats().inflight, 0, 'a closed response leaves the count')
  t.equal((guard.handle(fakeRequest('/readyz'), fakeResponse()) as GuardReply).statusCode, 200)
})

t.test('Guard: a drain marks responses in flight Connection: close and refuses new requests', async (t) => {
  const state = privateState()
  const guard = guardWithSeams({ logger: captureLogs().logger }, { state })
  const pending = fakeResponse()
  const started = Object.assign(fakeResponse(), { headersSent: true })
  guard.handle(fakeRequest(), pending)
  guard.handle(fakeRequest(), started)
  state.draining = true
  state.events.emit('drain')
  t.same(pending.set, { Connection: 'close' })
  t.same(started.set, {}, 'headers already sent are left alone')
  const refused = guard.handle(fakeRequest(), fakeResponse()) as GuardReply
  t.equal(refused.statusCode, 503)
  t.match(refused.headers, { Connection: 'close', 'Retry-After': '5' })
  t.same(JSON.parse(refused.body).message, MESSAGES.draining)
  t.match(guard.stats(), { state: 'draining', refusedDraining: 1, admitted: 2 })
  guard.close()
  guard.close()
  t.equal(state.events.listenerCount('drain'), 0, 'close removes the drain listener')
})

t.test('Guard: without limits there is no timer; delegate mode returns http-errors errors', async (t) => {
  const state = privateState()
  const tickers: unknown[] = []
  const plain = guardWithSeams({ logger: captureLogs().logger }, { state, onTicker: (ticker) => tickers.push(ticker) })
  t.same(tickers, [undefined], 'no ticker')
  t.equal(plain.handle(fakeRequest('/readyz', undefined, 'POST'), fakeResponse()), undefined, 'only GET and HEAD are probes')
  t.equal(plain.handle(fakeRequest('/readyz/deeper'), fakeResponse()), undefined, 'exact paths only')
  plain.close()
  const delegating = guardWithSeams({ errors: 'delegate', retryAfterSeconds: 9, logger: captureLogs().logger }, { state })
  state.draining = true
  const err = delegating.handle(fakeRequest(), fakeResponse())
  t.ok(err instanceof Error)
  t.match(err, { status: 503, reason: 'draining', headers: { 'Retry-After': '9', Connection: 'close' } })
  t.not(delegating.handle(fakeRequest(), fakeResponse()), err, 'a fresh error per request: frameworks may mutate them')
  delegating.close()
})

t.test('Guard: a shed request costs well under a millisecond of CPU', async (t) => {
  for (const errors of ['respond', 'delegate'] as const) {
    // a 1-byte heap limit is always exceeded, so every call takes the shedding path
    const guard = guardWithSeams({ maxHeapUsedBytes: 1, errors, logger: captureLogs().logger }, { state: privateState() })
    const req = fakeRequest('/api', 'application/json')
    const res = fakeResponse()
    const count = 20_000
    // this process's CPU time, not the wall clock: other processes on a busy machine
    // stretch the wall time, not the work done here
    const started = process.cpuUsage()
    const wallStarted = performance.now()
    for (let i = 0; i < count; i++) guard.handle(req, res)
    const used = process.cpuUsage(started)
    const perRequestMs = (used.user + used.system) / 1000 / count
    const wallPerRequestMs = (performance.now() - wallStarted) / count
    guard.close()
    t.equal(guard.stats().shed, count)
    t.ok(perRequestMs < 0.2, `${errors}: ${perRequestMs.toFixed(4)} ms of CPU per shed request (${wallPerRequestMs.toFixed(4)} ms of wall time)`)
  }
})
