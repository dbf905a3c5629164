// The lag maxEventLoopDelayMs is judged by, driven turn by turn with a fake
// clock and fake idle time: a loop that turns only to run the next long
// handler is behind, however fresh its last tick; a loop that turns on time,
// or waits for I/O, is not; and once it was behind by more than the limit it
// counts as caught up only after spare time or as long again on time.
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import { newWorkerState } from '../lib/worker/state.js'
import { guardWithSeams, type Guard } from '../lib/middleware/guard.js'
import type { GuardOptions } from '../lib/middleware/options.js'
import { CATCH_UP_IDLE_SHARE, IDLE_EVIDENCE_MS, LoopTicker } from '../lib/middleware/loop-lag.js'
import type { GuardReply } from '../lib/middleware/responses.js'
import { captureLogs } from './helpers/logs.js'

const TICK_MS = 10
const LIMIT_MS = 150

/** A loop driven by hand: `run` advances the clock (busy) and the idle time, `tick` runs the timer. */
interface FakeLoop {
  now: () => number
  /** the loop runs callbacks for `busyMs`, after waiting `idleMs` for I/O. */
  run: (busyMs: number, idleMs?: number) => void
  clock: () => number
  readIdle: () => number
}

function fakeLoop (): FakeLoop {
  let now = 1000
  let idle = 0
  return {
    now: () => now,
    run: (busyMs, idleMs = 0) => { now += busyMs + idleMs; idle += idleMs },
    clock: () => now,
    readIdle: () => idle,
  }
}

/** A ticker whose real timer is stopped: its tick runs only when the test says so. */
function manualTicker (loop: FakeLoop, limitMs = LIMIT_MS): { ticker: LoopTicker, tick: () => number } {
  let reported = Number.NaN
  const ticker = new LoopTicker((_now, behind) => { reported = behind }, TICK_MS, loop.clock, loop.readIdle, limitMs)
  ticker.stop()
  const tick = ticker.tick
  return { ticker, tick: () => { tick(); return reported } }
}

t.test('a row of long turns adds up, while the lag of each turn stays low', async (t) => {
  const loop = fakeLoop()
  const { ticker, tick } = manualTicker(loop, Number.POSITIVE_INFINITY)
  loop.run(TICK_MS)
  tick()
  // one request per turn, each followed by a 40 ms handler, the tick running between them
  const seen: number[] = []
  for (let i = 0; i < 6; i++) {
    seen.push(Math.round(ticker.behind()))
    t.equal(ticker.lag(), 0, 'a request read right after the tick sees no lag of this turn')
    loop.run(40)
    tick()
  }
  t.same(seen, [0, 30, 70, 110, 150, 190], 'behind: from the last tick that ran on time')
  t.equal(Math.round(ticker.behind()), 230)
  loop.run(20)
  t.equal(Math.round(ticker.lag()), 10, 'and inside a turn both grow')
  t.equal(Math.round(ticker.behind()), 250)
})

t.test('a tick on time, or after the loop waited for I/O, ends the row', async (t) => {
  const loop = fakeLoop()
  const { ticker, tick } = manualTicker(loop, Number.POSITIVE_INFINITY)
  loop.run(TICK_MS)
  tick()
  for (let i = 0; i < 3; i++) { loop.run(40); tick() }
  t.equal(Math.round(ticker.behind()), 110)
  loop.run(TICK_MS + TICK_MS)
  t.equal(tick(), 0, 'a tick one interval late is on time')
  t.equal(ticker.behind(), 0)

  // busy with cheap requests: every turn short, never idle: never behind
  for (let i = 0; i < 50; i++) { loop.run(18); tick() }
  t.equal(ticker.behind(), 0, 'turns of 18 ms: each tick at most one interval late')

  // a client that sends its next request once the answer is in: the loop waits for it
  for (let i = 0; i < 20; i++) { loop.run(40, 0.3); tick() }
  t.equal(Math.round(ticker.behind()), 30, 'a wait for I/O in each gap: behind by one turn at most, not by a row of them')
  loop.run(TICK_MS)
  tick()
  for (let i = 0; i < 4; i++) { loop.run(40, IDLE_EVIDENCE_MS / 2); tick() }
  t.equal(Math.round(ticker.behind()), 150, 'a wait shorter than IDLE_EVIDENCE_MS is no evidence')

  // a wait, then a long turn: the turn after the wait counts
  loop.run(TICK_MS)
  tick()
  loop.run(300, 5)
  t.equal(tick(), 290, 'waited 5 ms, then 300 ms busy: behind 290 ms (the wait is taken to have come first)')
  loop.run(TICK_MS)
  t.equal(tick(), 0)
})

t.test('the first tick may be late from start-up: that is no backlog', async (t) => {
  const loop = fakeLoop()
  const { ticker, tick } = manualTicker(loop)
  loop.run(400)
  t.equal(Math.round(ticker.behind()), 390, 'while start-up blocks the loop, a request sees it')
  t.equal(tick(), 0)
  t.equal(ticker.behind(), 0)
})

t.test('a new connection finds the loop behind by more than the limit: caught up after spare time, or once new connections stop', async (t) => {
  const loop = fakeLoop()
  const { ticker, tick } = manualTicker(loop)
  loop.run(TICK_MS)
  tick()
  for (let i = 0; i < 5; i++) { loop.run(40); tick() }
  t.equal(Math.round(ticker.behind()), 190, 'over the limit')
  t.notOk(ticker.catchingUp, 'behind alone does not make the loop catch up')
  t.equal(Math.round(ticker.unseen()), 190, 'what a request from out of sight is judged by')
  t.ok(ticker.catchingUp, 'over the limit: catching up')

  // requests refused, turns short, the queue the loop cannot see drains: no idle yet
  for (let i = 0; i < 6; i++) { loop.run(TICK_MS); tick() }
  t.ok(ticker.behind() > LIMIT_MS, '60 ms on time without waiting for I/O: the backlog is still there')
  // the queue is drained: the loop starts to wait for I/O
  loop.run(6, 4)
  t.ok(tick() > LIMIT_MS, `idle 4 ms of the 70 since it began to catch up: under ${CATCH_UP_IDLE_SHARE * 100} %`)
  loop.run(1, 9)
  t.equal(tick(), 0, 'idle 13 ms of 80: caught up')
  t.notOk(ticker.catchingUp)

  // again over the limit; this time the loop never waits (cheap refusals keep it busy)
  for (let i = 0; i < 5; i++) { loop.run(40); tick() }
  t.ok(ticker.unseen() > LIMIT_MS)
  let since = loop.now()
  while (ticker.catchingUp && loop.now() - since < 1000) { loop.run(TICK_MS); tick() }
  t.equal(loop.now() - since, LIMIT_MS, 'caught up as long as the limit after the last new connection')

  // late ticks while catching up (the CPU taken by another process, the app's own timers)
  // do not hold it beyond the limit: what is left is refused in the next round
  for (let i = 0; i < 5; i++) { loop.run(40); tick() }
  ticker.unseen()
  since = loop.now()
  while (ticker.catchingUp && loop.now() - since < 1000) { loop.run(30); tick() }
  t.equal(loop.now() - since, LIMIT_MS, 'as long as the limit after the last new connection, late ticks or not')
  t.equal(ticker.behind(), 0)

  // new connections keep coming, one per short turn, and the loop never waits: the queue
  // that hands them over is not empty yet, so it holds on; 150 ms after the last, it lets go
  for (let i = 0; i < 5; i++) { loop.run(40); tick() }
  ticker.unseen()
  for (let i = 0; i < 50; i++) { loop.run(TICK_MS); ticker.unseen(); tick() }
  t.ok(ticker.catchingUp, '500 ms of new connections, no spare time: still catching up')
  since = loop.now()
  while (ticker.catchingUp && loop.now() - since < 1000) { loop.run(TICK_MS); tick() }
  t.equal(loop.now() - since, LIMIT_MS, 'caught up once no new connection came for as long as the limit')

  // a caught-up loop that waits: the first tick 10 ms on, with the loop idle, is enough
  for (let i = 0; i < 5; i++) { loop.run(40); tick() }
  ticker.unseen()
  loop.run(1, 9)
  t.equal(tick(), 0, 'one interval of mostly waiting: caught up')

  // behind by more than the limit, but no request from out of sight: the next tick on time ends it
  for (let i = 0; i < 5; i++) { loop.run(40); tick() }
  t.ok(ticker.behind() > LIMIT_MS)
  loop.run(TICK_MS)
  t.equal(tick(), 0)
})

const privateState = newWorkerState

/** A request as the guard sees it; `socket` is its connection (a new object: a new connection). */
function fakeRequest (url = '/', socket: object = {}): IncomingMessage {
  return { url, method: 'GET', headers: {}, socket } as unknown as IncomingMessage
}

function fakeResponse (): ServerResponse {
  return Object.assign(new EventEmitter(), { destroyed: false, headersSent: false, setHeader () {} }) as unknown as ServerResponse
}

/** A guard on a fake loop, its ticker's timer stopped: `tick` runs it. */
function guardOn (loop: FakeLoop, options: GuardOptions): { guard: Guard, tick: () => void } {
  let ticker: LoopTicker | undefined
  const guard = guardWithSeams(options, { clock: loop.clock, readIdle: loop.readIdle, tickMs: TICK_MS, state: privateState(), onTicker: (made) => { ticker = made } })
  ticker!.stop()
  const tick = ticker!.tick
  loop.run(TICK_MS)
  tick()
  return { guard, tick }
}

t.test('Guard: new connections read one per turn of 40 ms handlers are shed once the loop is 150 ms behind', async (t) => {
  const loop = fakeLoop()
  const logs = captureLogs()
  const { guard, tick } = guardOn(loop, { maxEventLoopDelayMs: LIMIT_MS, maxInFlight: 8, recoveryMs: 100, logger: logs.logger })
  t.teardown(() => guard.close())

  // the worker of a flood: each turn, the timer, then one new connection's request read alone
  const decisions: string[] = []
  const turn = (socket: object = {}): string => {
    const res = fakeResponse()
    const admitted = guard.handle(fakeRequest('/heavy', socket), res) === undefined
    decisions.push(admitted ? 'A' : 'S')
    res.emit('close')
    loop.run(admitted ? 40 : 0.05)
    return admitted ? 'A' : 'S'
  }
  const keptAlive = {}
  t.equal(turn(keptAlive), 'A')
  tick()
  for (let i = 0; i < 4; i++) { turn(); tick() }
  t.equal(decisions.join(''), 'AAAAA', 'behind 0, 30, 70, 110, 150 ms: admitted (the limit itself is allowed)')
  t.equal(guard.handle(fakeRequest('/', keptAlive), fakeResponse()), undefined,
    'a request on a connection already served sees the lag of this turn: admitted')
  t.equal(turn(), 'S', 'a new connection: behind 190 ms, shed though the last tick ran just now')
  t.match(guard.stats(), { state: 'overloaded', shed: 1, overload: { reason: 'maxEventLoopDelayMs', limit: LIMIT_MS } })
  t.match(logs.events('overload.start'), [{ reason: 'maxEventLoopDelayMs', value: 190, limit: LIMIT_MS }])
  const ready = guard.handle(fakeRequest('/readyz'), fakeResponse()) as GuardReply
  t.same(JSON.parse(ready.body), { status: 'overloaded', reason: 'maxEventLoopDelayMs' })
  t.equal(turn(keptAlive), 'S', 'while the loop catches up, every request is judged by how far behind it is')

  // refusals are cheap: the backlog the worker could not see is refused turn after turn,
  // 200 per 10 ms tick, until the loop has spare time
  for (let i = 0; i < 6; i++) {
    for (let k = 0; k < 200; k++) turn()
    loop.run(0)
    tick()
  }
  t.notOk(decisions.slice(5).includes('A'), 'nothing admitted while the queue drains')
  // drained: requests come every 5 ms, the loop waits in between
  let admittedAfter = -1
  for (let i = 0; i < 20 && admittedAfter < 0; i++) {
    if (turn() === 'A') admittedAfter = i
    else { loop.run(0, 5); tick() }
  }
  t.ok(admittedAfter > 0 && admittedAfter < 10, `admitted again after ${admittedAfter} idle gaps of 5 ms`)
  t.equal(guard.stats().admitted, 7)
})

t.test('Guard: a loop busy with cheap requests, with kept-alive connections, or with one client at a time is not shed on lag', async (t) => {
  const loop = fakeLoop()
  const { guard, tick } = guardOn(loop, { maxEventLoopDelayMs: LIMIT_MS, logger: captureLogs().logger })
  t.teardown(() => guard.close())
  let refused = 0
  const request = (socket?: object): void => {
    if (guard.handle(fakeRequest('/', socket), fakeResponse()) !== undefined) refused++
  }
  // 100 cheap requests per turn of 15 ms, never idle, each on a new connection
  for (let i = 0; i < 100; i++) {
    for (let k = 0; k < 100; k++) { request(); loop.run(0.15) }
    tick()
  }
  t.equal(refused, 0, 'cheap requests, turns on time')
  // long turns back to back, never idle, each reading a request of a connection served before
  const connections = Array.from({ length: 10 }, () => ({}))
  for (const socket of connections) request(socket)
  for (let i = 0; i < 50; i++) { request(connections[i % 10]); loop.run(40); tick() }
  t.equal(refused, 0, 'kept-alive connections: judged by the lag of the turn')
  loop.run(TICK_MS)
  tick()
  // one client at a time on new connections: the loop waits for the next one
  for (let i = 0; i < 50; i++) { request(); loop.run(40, 0.5); tick() }
  t.equal(refused, 0, 'one at a time: the loop waited for each')
  t.match(guard.stats(), { shed: 0, overloadEpisodes: 0, admitted: 10_110 })
})
