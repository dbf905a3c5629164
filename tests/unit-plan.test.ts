// The supervisor's decisions over sequences of facts and commands, with no process:
// what decide() records and which steps it asks for.
import t from 'tap'
import { decide, initialState, LISTEN_FAILED_GRACE_MS, SELF_DRAIN_HOLD_MS, timerKey } from '../lib/supervisor/plan.js'
import { levelOf, type EventFields } from '../lib/supervisor/events.js'
import { Sim, ANNOUNCE, POLICY, beat, events, eventOf, forks, ofKind } from './helpers/plan-sim.js'

const running = (workers: number, policy = {}) => {
  const sim = new Sim(workers, policy)
  sim.start()
  sim.readyAll()
  return sim
}

const newConfig = (workers: number, policy = POLICY) => ({ type: 'config' as const, ok: true as const, workers, policy })

t.test('decide() leaves the state it is given untouched', async (t) => {
  const state = initialState(2, POLICY)
  const before = JSON.stringify([...state.members], null, 0) + JSON.stringify(state)
  const { state: next, steps } = decide(state, [{ type: 'start', announce: ANNOUNCE }], { now: 1, random: () => 0 })
  t.equal(JSON.stringify([...state.members]) + JSON.stringify(state), before)
  t.equal(next.members.size, 2)
  t.equal(forks(steps).length, 2)
})

t.test('start: a fork per slot, then started once every worker is ready', async (t) => {
  const sim = new Sim(2)
  const first = sim.start()
  t.same(events(first), ['primary.start', 'worker.fork', 'worker.fork'])
  t.same(forks(first).map((f) => [f.slot, f.generation]), [[0, 0], [1, 0]])
  t.same(ofKind(first, 'timer').map((x) => x.key), [timerKey.ready(1), timerKey.ready(2)], 'each fork has a ready deadline')
  t.same(ofKind(sim.ready(1), 'started'), [], 'not started with one of two ready')
  const second = sim.ready(2)
  t.same(ofKind(second, 'started'), [{ do: 'started' }])
  t.same(ofKind(sim.feed({ type: 'beat', member: 1, stats: beat({ rssBytes: 1, heapUsedBytes: 1, eventLoopDelayMs: 0, requests: 0, inflight: 0 }) }), 'started'), [], 'started only once')
  t.ok(sim.start().length === 0, 'a second start does nothing')
})

t.test('reload: a successor in every slot at once; the old workers drain together once all are ready', async (t) => {
  const sim = running(2)
  const [a, b] = sim.currents() as number[]
  t.same(ofKind(sim.feed({ type: 'reload', ticket: 1 }), 'read-config'), [{ do: 'read-config' }])
  const begun = sim.feed(newConfig(2))
  t.same(events(begun), ['reload.start', 'worker.fork', 'worker.fork'])
  t.same(ofKind(begun, 'adopt-config'), [{ do: 'adopt-config', generation: 1 }])
  const [s0, s1] = forks(begun)
  t.match(s0, { slot: 0, generation: 1 })
  t.match(s1, { slot: 1, generation: 1 })
  t.equal(sim.state.slots[0].successor, s0.member)
  const first = sim.ready(s0.member)
  t.same(events(first), ['worker.ready'], 'a ready successor waits for the others: no old worker closes a connection yet')
  t.equal(sim.readyServing(), 2, 'two ready workers all along')
  const done = sim.ready(s1.member)
  t.same(events(done), ['worker.ready', 'worker.drain', 'worker.drain', 'reload.complete'], 'the last one ready: every old worker drains at once')
  t.same(ofKind(done, 'drain'), [{ do: 'drain', member: a, starting: false }, { do: 'drain', member: b, starting: false }])
  t.same(ofKind(done, 'reply'), [{ do: 'reply', ticket: 1, outcome: 'complete' }])
  t.match(eventOf(done, 'reload.complete')!.fields, { generation: 1 })
  t.same(sim.exit(a, 0).filter((s) => s.do === 'fork'), [], 'drained workers exiting fork nothing')
  sim.exit(b, 0)
  t.equal(sim.state.members.size, 2)
  t.match(sim.state.lastReload, { outcome: 'complete', generation: 1 })
})

t.test('a reload begun while an old worker still starts: that worker, once ready, gets a successor before any old one drains', async (t) => {
  const sim = new Sim(2)
  const [a, b] = forks(sim.start()).map((f) => f.member)
  sim.ready(a)
  sim.feed({ type: 'reload', ticket: 1 })
  const [s0] = forks(sim.feed(newConfig(2)))
  t.match(s0, { slot: 0, generation: 1 }, 'only the ready old worker is replaced at first')
  const late = forks(sim.ready(b))
  t.match(late, [{ slot: 1, generation: 1 }], 'the late old worker gets a successor too')
  t.same(ofKind(sim.ready(s0.member), 'drain'), [], 'slot 0\'s successor waits for slot 1\'s')
  const done = sim.ready(late[0].member)
  t.same(ofKind(done, 'drain').map((d) => d.member), [a, b], 'the old workers drain together')
  t.ok(events(done).includes('reload.complete'))
})

t.test('a reload whose starting successor leaves by itself waits for the next one in its slot; one removed by a scale-down is not waited for', async (t) => {
  const sim = running(3)
  const [a, b, c] = sim.currents() as number[]
  sim.feed({ type: 'reload', ticket: 1 })
  const [s0, s1, s2] = forks(sim.feed(newConfig(3)))
  sim.ready(s0.member)
  sim.ready(s1.member)
  const left = sim.feed({ type: 'draining', member: s2.member })
  t.same(ofKind(left, 'drain').map((d) => d.member), [s2.member], 'the ready successors wait: slot 2\'s old worker still serves')
  const again = forks(sim.fire(timerKey.slot(2)))
  t.match(again, [{ slot: 2, generation: 1 }], 'slot 2 gets a successor of its own, after the hold of a worker that left by itself')
  t.equal(sim.state.slots[2].current, c, 'its old worker serves meanwhile')
  const done = sim.ready(again[0].member)
  t.same(ofKind(done, 'drain').map((d) => d.member), [a, b, c], 'the old workers drain together')
  t.ok(events(done).includes('reload.complete'))
  t.equal(sim.replies.get(1), 'complete')

  const scaled = running(3)
  scaled.feed({ type: 'reload', ticket: 1 })
  const [t0, t1] = forks(scaled.feed(newConfig(3)))
  scaled.ready(t0.member)
  scaled.ready(t1.member)
  const down = scaled.feed({ type: 'scale', workers: 2 })
  t.ok(events(down).includes('reload.complete'), 'a scale-down that removes the slot still starting completes the reload')
  t.same(scaled.byPhase('ready').map((m) => [m.slot, m.generation]), [[0, 1], [1, 1]])
})

t.test('a reload onto a broken build rolls back: nothing counted, old workers keep serving, a later crash restarts an old one', async (t) => {
  const sim = running(2)
  const [a] = sim.currents() as number[]
  sim.feed({ type: 'reload', ticket: 7 })
  const begun = sim.feed(newConfig(3)) // the broken build also wants a third worker
  const news = forks(begun)
  t.same(news.map((f) => [f.slot, f.generation]), [[2, 1], [0, 1], [1, 1]], 'the new slot and a successor in each old one start')
  const aborted = sim.exit(news[0].member, 1)
  t.same(events(aborted), ['worker.exit', 'worker.drain', 'worker.drain', 'reload.aborted'])
  t.match(eventOf(aborted, 'reload.aborted'), { fields: { reason: /worker 2 crashed before it was ready/ }, stderrOf: news[0].member })
  t.same(ofKind(aborted, 'reply'), [{ do: 'reply', ticket: 7, outcome: 'aborted' }])
  t.same(ofKind(aborted, 'drain'), [{ do: 'drain', member: news[1].member, starting: true }, { do: 'drain', member: news[2].member, starting: true }], 'the other new workers still starting are stopped')
  t.same(sim.state.wish, { workers: 2, generation: 0 }, 'the wish is what ran before')
  t.equal(sim.state.slots.length, 2)
  t.same(sim.state.crashes, [], 'nothing counted as a crash')
  t.same(events(sim.exit(news[1].member, 1)), ['worker.exit'], 'the stopped new worker exits as expected')
  sim.exit(news[2].member, 1)
  t.equal(sim.readyServing(), 2)
  // an old worker crashes after the rollback: its slot restarts with the old generation
  const crash = sim.exit(a, 1)
  t.same(events(crash), ['worker.exit', 'worker.restart'])
  const restart = sim.fire(timerKey.slot(0))
  t.match(forks(restart), [{ slot: 0, generation: 0 }])
  // the next reload runs as a generation never used before, not the failed one's
  sim.ready(forks(restart)[0].member)
  sim.feed({ type: 'reload', ticket: 8 })
  t.match(eventOf(sim.feed(newConfig(2)), 'reload.start'), { fields: { generation: 2 } })
})

t.test('a reload stops a successor of an older generation still starting (a recycle\'s) and starts one of its own', async (t) => {
  const sim = running(1, { maxRequests: 100 })
  const [old] = sim.currents() as number[]
  const [recycling] = forks(sim.feed({ type: 'beat', member: old, stats: beat({ requests: 100 }) }))
  sim.feed({ type: 'reload', ticket: 1 })
  const begun = sim.feed(newConfig(1))
  t.same(ofKind(begun, 'drain'), [{ do: 'drain', member: recycling.member, starting: true }], 'the recycle\'s successor stops')
  const [next] = forks(begun)
  t.match(next, { slot: 0, generation: 1 })
  const done = sim.ready(next.member)
  t.same(ofKind(done, 'drain').map((d) => d.member), [old], 'the old worker moves its clients once, to the new one')
  t.ok(events(done).includes('reload.complete'))
})

t.test('a rollback stops the new workers that were ready and waiting; the old ones never stopped serving', async (t) => {
  const sim = running(2)
  const [a, b] = sim.currents() as number[]
  sim.feed({ type: 'reload' })
  const [s0, s1] = forks(sim.feed(newConfig(2)))
  sim.ready(s0.member)
  const aborted = sim.exit(s1.member, 1)
  t.ok(events(aborted).includes('reload.aborted'))
  t.same(ofKind(aborted, 'drain'), [{ do: 'drain', member: s0.member, starting: false }], 'the ready new worker drains')
  t.same(forks(aborted), [], 'nothing to replace')
  t.same(sim.currents(), [a, b], 'the old workers kept their slots')
})

t.test('scale during the config read: the scale applies at once and wins over the config\'s count', async (t) => {
  const sim = running(2)
  sim.feed({ type: 'reload', ticket: 1 })
  const scaled = sim.feed({ type: 'scale', workers: 3 })
  t.same(events(scaled), ['scale', 'worker.fork'])
  t.match(forks(scaled), [{ slot: 2, generation: 0 }])
  sim.readyAll()
  const begun = sim.feed(newConfig(2))
  t.same(events(begun), ['reload.start', 'worker.fork', 'worker.fork', 'worker.fork'], 'no scale back to the file\'s 2')
  t.match(eventOf(begun, 'reload.start')!.fields, { generation: 1, workers: 3 })
  for (let i = 0; i < 3; i++) sim.readyAll()
  t.equal(sim.replies.get(1), 'complete')
  t.same(sim.byPhase('ready').map((m) => [m.slot, m.generation]), [[0, 1], [1, 1], [2, 1]])
})

t.test('a reload during a reload is queued once, then ignored; the queued one runs next', async (t) => {
  const sim = running(1)
  sim.feed({ type: 'reload', ticket: 1 })
  t.same(events(sim.feed({ type: 'reload', ticket: 2 })), ['reload.queued'])
  t.same(events(sim.feed({ type: 'reload', ticket: 3 })), ['reload.ignored'])
  t.same([sim.replies.get(2), sim.replies.get(3)], ['queued', 'ignored'])
  sim.feed(newConfig(1))
  const done = sim.readyAll()
  t.same(events(done), ['worker.ready', 'worker.drain', 'reload.complete'])
  t.same(ofKind(done, 'read-config'), [{ do: 'read-config' }], 'the queued reload reads the config next')
  t.same(events(sim.feed({ type: 'config', ok: false, error: 'bad', issues: ['workers: no'] })), ['reload.aborted'])
})

t.test('a recycle whose replacement fails: the stale worker keeps serving, the slot backs off, then tries again', async (t) => {
  const sim = running(1, { maxRequests: 100 })
  const [old] = sim.currents() as number[]
  const stats = beat({ rssBytes: 1, heapUsedBytes: 1, requests: 100 })
  const marked = sim.feed({ type: 'beat', member: old, stats })
  t.same(events(marked), ['worker.recycle', 'worker.fork'])
  const successor = forks(marked)[0].member
  const failed = sim.exit(successor, 1)
  t.same(events(failed), ['worker.exit', 'worker.restart'])
  t.equal(sim.state.slots[0].current, old, 'the stale worker still serves')
  t.equal(sim.member(old)!.phase, 'ready')
  t.same(forks(sim.feed({ type: 'beat', member: old, stats })), [], 'no new successor while the slot is held')
  const again = sim.fire(timerKey.slot(0))
  t.match(forks(again), [{ slot: 0 }])
  const swapped = sim.ready(forks(again)[0].member)
  t.match(ofKind(swapped, 'emit').find((e) => e.event === 'worker.drain'), { fields: { reason: 'recycle' } })
})

t.test('a recycle\'s successor ready while a reload reads its config takes over at once, and is then replaced by the reload', async (t) => {
  const sim = running(1, { maxRequests: 100 })
  const [old] = sim.currents() as number[]
  const [successor] = forks(sim.feed({ type: 'beat', member: old, stats: beat({ requests: 100 }) }))
  sim.feed({ type: 'reload', ticket: 1 })
  const took = sim.ready(successor.member)
  t.same(ofKind(took, 'drain').map((d) => d.member), [old], 'the stale worker drains at once')
  t.equal(sim.state.slots[0].current, successor.member)
  const [next] = forks(sim.feed(newConfig(1)))
  t.match(next, { slot: 0, generation: 1 })
  t.ok(events(sim.ready(next.member)).includes('reload.complete'))
})

t.test('a recycle asked for replaces the slot\'s worker: its successor starts, then it drains; a second ask meanwhile does nothing', async (t) => {
  const sim = running(2)
  const [a] = sim.currents() as number[]
  const asked = sim.feed({ type: 'recycle', workerId: 0 })
  t.match(eventOf(asked, 'worker.recycle'), { fields: { workerId: 0, reason: 'asked' }, member: a })
  const [successor] = forks(asked)
  t.match(successor, { slot: 0, generation: 0 })
  t.same(sim.feed({ type: 'recycle', workerId: 0 }), [], 'already being replaced')
  t.same(sim.feed({ type: 'recycle', workerId: 7 }), [], 'no such slot')
  const done = sim.ready(successor.member)
  t.match(ofKind(done, 'emit').find((e) => e.event === 'worker.drain'), { member: a, fields: { reason: 'recycle' } })
})

t.test('an old worker that crashes during a reload restarts as the new generation; the reload completes', async (t) => {
  const sim = running(2)
  const [, b] = sim.currents() as number[]
  sim.feed({ type: 'reload', ticket: 1 })
  const s0 = forks(sim.feed(newConfig(2)))[0]
  const crash = sim.exit(b, 1)
  t.same(events(crash), ['worker.exit', 'worker.restart'], 'an old worker\'s crash is a crash, not an abort')
  t.equal(sim.state.reload?.phase, 'replacing')
  t.notOk(sim.state.slots[1].held, 'no restart delay: slot 1\'s successor, of the new generation, is already starting')
  sim.readyAll()
  t.equal(sim.replies.get(1), 'complete')
  t.ok(s0)
})

t.test('stop during a reload: the caller hears "stopped", the config read later changes nothing', async (t) => {
  const sim = running(2)
  sim.feed({ type: 'reload', ticket: 1 })
  const stopping = sim.feed({ type: 'stop', signal: 'SIGTERM' })
  t.same(events(stopping), ['shutdown.start', 'worker.drain', 'worker.drain'])
  t.equal(sim.replies.get(1), 'stopped')
  t.same(sim.feed(newConfig(4)), [], 'the late config is ignored')
  sim.exitLeaving()
  t.match(ofKind(sim.log, 'exit'), [{ code: 0, signal: 'SIGTERM' }])
  t.same(forks(sim.log.slice(sim.log.indexOf(stopping[0]))), [], 'nothing forked after the stop')
})

t.test('stop while a successor starts: it is stopped with SIGTERM, as it may not listen for messages yet', async (t) => {
  const sim = running(1)
  sim.feed({ type: 'reload' })
  const successor = forks(sim.feed(newConfig(1)))[0].member
  const stopping = sim.feed({ type: 'stop', signal: 'SIGINT' })
  t.match(ofKind(stopping, 'drain'), [{ starting: false }, { member: successor, starting: true }])
})

t.test('SIGTERM while the config loads (before start): the cluster exits at once, forking nothing', async (t) => {
  const sim = new Sim(2)
  const steps = sim.feed({ type: 'stop', signal: 'SIGTERM' })
  t.same(events(steps), ['shutdown.complete'])
  t.same(ofKind(steps, 'exit'), [{ do: 'exit', code: 0, signal: 'SIGTERM' }])
  t.same(sim.start(), [], 'a start after the stop does nothing')
})

t.test('a second SIGINT kills what remains; a drain past its deadline is killed and makes the exit code 1', async (t) => {
  const sim = running(2, { shutdownTimeoutMs: 500 })
  const [a, b] = sim.currents() as number[]
  sim.feed({ type: 'stop', signal: 'SIGTERM' })
  t.same(sim.feed({ type: 'stop', signal: 'stop' }), [], 'a stop() call while stopping does nothing')
  sim.now += 500
  const killed = sim.fire(timerKey.deadline(a))
  t.same(events(killed), ['worker.killed'])
  t.same(ofKind(killed, 'kill'), [{ do: 'kill', member: a }])
  t.match(eventOf(sim.exit(a, null, 'SIGKILL'), 'worker.exit')!.fields, { reason: 'drain-timeout', expected: true })
  const fast = sim.feed({ type: 'stop', signal: 'SIGINT' })
  t.match(eventOf(fast, 'shutdown.start')!.fields, { fast: true, workers: 1 })
  t.same(ofKind(fast, 'kill'), [{ do: 'kill', member: b }])
  const done = sim.exit(b, null, 'SIGKILL')
  t.match(eventOf(done, 'shutdown.complete')!.fields, { exitCode: 1, killed: 2 })
})

t.test('crash rate: one crash more than the window allows stops the cluster (exit 1); a boot failure exits 3', async (t) => {
  const sim = running(1, { maxCrashRate: { crashes: 2, windowMs: 10_000 } })
  for (let i = 0; i < 2; i++) {
    t.same(events(sim.exit(sim.currents()[0]!, 1)), ['worker.exit', 'worker.restart'])
    sim.fireNext()
    sim.readyAll()
  }
  const third = sim.exit(sim.currents()[0]!, 1)
  t.same(events(third).slice(0, 3), ['worker.exit', 'crash-rate.exceeded', 'shutdown.start'])
  t.match(ofKind(third, 'exit'), [{ code: 1 }])

  const boot = new Sim(1, { maxCrashRate: { crashes: 1, windowMs: 10_000 } })
  boot.start()
  boot.exit(1, 1)
  boot.fireNext()
  const failed = boot.exit(2, 1)
  t.match(eventOf(failed, 'boot.failed'), { fields: { cause: 'crash-rate', crashes: 2 }, stderrOf: 2 })
  t.match(ofKind(failed, 'exit'), [{ code: 3 }])
})

t.test('crashes older than the window are forgotten; a worker that stayed up resets its slot\'s backoff', async (t) => {
  const sim = running(1, { maxCrashRate: { crashes: 1, windowMs: 1000 } })
  t.match(eventOf(sim.exit(sim.currents()[0]!, 1), 'worker.restart')!.fields, { attempt: 1, delayMs: 100 })
  sim.fireNext()
  sim.readyAll()
  sim.now += 1001
  const second = sim.exit(sim.currents()[0]!, 1)
  t.notOk(events(second).includes('crash-rate.exceeded'), 'the first crash left the window')
  t.match(eventOf(second, 'worker.restart')!.fields, { attempt: 2, delayMs: 200 })
  sim.fireNext()
  sim.readyAll()
  sim.now += 30_000
  const longUp = sim.exit(sim.currents()[0]!, 1)
  t.match(eventOf(longUp, 'worker.restart')!.fields, { attempt: 0, delayMs: 0 }, 'a worker that served for long restarts at once')
  t.match(forks(longUp), [{ slot: 0 }], 'forked in the same pass')
  sim.readyAll()
  sim.now += 1001 // (out of the crash window)
  t.match(eventOf(sim.exit(sim.currents()[0]!, 1), 'worker.restart')!.fields, { attempt: 1, delayMs: 100 }, 'the backoff starts with the next crash')
})

t.test('stopOnExitCodes: that exit code stops the cluster at once as a boot failure', async (t) => {
  const sim = running(2, { stopOnExitCodes: [78] })
  const steps = sim.exit(sim.currents()[0]!, 78)
  t.match(eventOf(steps, 'boot.failed')!.fields, { cause: 'stop-code' })
})

const EADDRINUSE = { address: '127.0.0.1:3000', code: 'EADDRINUSE', message: 'listen EADDRINUSE: address already in use 127.0.0.1:3000' }

t.test('a listen failure at start: logged with the address and code; an app that swallows it is stopped after a short grace; a boot failure (exit 3) at once', async (t) => {
  const sim = new Sim(2)
  sim.start()
  const failed = sim.feed({ type: 'listen-failed', member: 1, ...EADDRINUSE })
  t.match(eventOf(failed, 'worker.listen-failed'), { fields: { workerId: 0, address: '127.0.0.1:3000', code: 'EADDRINUSE' }, member: 1 })
  t.match(ofKind(failed, 'timer'), [{ key: timerKey.ready(1), ms: LISTEN_FAILED_GRACE_MS }], 'the ready deadline shortened')
  t.same(ofKind(sim.fire(timerKey.ready(1)), 'kill'), [{ do: 'kill', member: 1 }])
  const exit = sim.exit(1, null, 'SIGKILL')
  t.match(eventOf(exit, 'worker.exit')!.fields, { reason: 'listen-failed', expected: false })
  t.match(eventOf(exit, 'boot.failed'), { fields: { cause: 'listen-failed', address: '127.0.0.1:3000', code: 'EADDRINUSE', message: /cannot listen on 127\.0\.0\.1:3000: EADDRINUSE/ }, stderrOf: 1 })
  t.same(events(exit).includes('worker.restart'), false, 'no restart')
  t.match(ofKind(sim.exitLeaving(), 'exit'), [{ code: 3 }])

  const throws = new Sim(1)
  throws.start()
  throws.feed({ type: 'listen-failed', member: 1, ...EADDRINUSE })
  const crashed = throws.exit(1, 1)
  t.match(eventOf(crashed, 'worker.exit')!.fields, { reason: 'crashed' }, 'an app that throws crashes as before')
  t.match(eventOf(crashed, 'boot.failed')!.fields, { cause: 'listen-failed' })
  t.match(ofKind(crashed, 'exit'), [{ code: 3 }])
})

t.test('a listen failure the app recovers from (it listens elsewhere within the grace) is only logged', async (t) => {
  const sim = new Sim(1)
  sim.start()
  sim.feed({ type: 'listen-failed', member: 1, ...EADDRINUSE })
  const ready = sim.ready(1)
  t.same(events(ready), ['worker.ready'])
  t.same(ofKind(ready, 'started'), [{ do: 'started' }])
  t.equal(sim.timers.has(timerKey.ready(1)), false, 'no deadline left')
})

t.test('a listen failure of a new generation aborts its reload with the address; of a generation that served, it is a crash like any other', async (t) => {
  const sim = running(2)
  sim.feed({ type: 'reload', ticket: 1 })
  const [next] = forks(sim.feed(newConfig(2)))
  sim.feed({ type: 'listen-failed', member: next.member, ...EADDRINUSE })
  const aborted = sim.exit(next.member, 1)
  t.match(eventOf(aborted, 'reload.aborted')!.fields, { reason: /worker 0 crashed before it was ready .*could not listen on 127\.0\.0\.1:3000: EADDRINUSE/ })
  t.equal(sim.readyServing(), 2, 'the old workers keep serving')

  const [a] = sim.currents() as number[]
  sim.exit(a, 1)
  sim.fireNext()
  const replacement = sim.byPhase('starting')[0]
  sim.feed({ type: 'listen-failed', member: replacement.id, ...EADDRINUSE })
  const crash = sim.exit(replacement.id, 1)
  t.same(events(crash), ['worker.exit', 'worker.restart'], 'counted and restarted with backoff, the cluster goes on')
})

t.test('config.warning when a worker that never becomes ready could never trip the breaker', async (t) => {
  const warning = (workers: number, policy = {}) => eventOf(new Sim(workers, policy).start(), 'config.warning')
  t.equal(warning(1), undefined, 'the defaults trip with one worker')
  t.equal(warning(16), undefined)
  t.match(warning(2, { readyTimeoutMs: 30_000 }), { fields: { key: 'readyTimeoutMs', workers: 2, readyTimeoutMs: 30_000, message: /at most 4 such kills fit/ } })
  t.equal(warning(3, { readyTimeoutMs: 30_000 }), undefined, '3 workers: 6 kills fit in the window')
  t.match(warning(1, { restartBackoff: { ...POLICY.restartBackoff, initialMs: 20_000, maxMs: 20_000 } }), { fields: { key: 'maxCrashRate' } }, 'one warning at a time')
})

t.test('worker.drain says why: reload, rollback, scale, recycle, shutdown, signal', async (t) => {
  const drains = (steps: ReturnType<Sim['feed']>) => steps.filter((s) => s.do === 'emit' && s.event === 'worker.drain').map((s) => (s as { fields: { reason: string } }).fields.reason)
  const sim = running(3, { maxMemoryMb: 100 })
  sim.feed({ type: 'reload', ticket: 1 })
  const [s0, s1, s2] = forks(sim.feed(newConfig(3)))
  t.same(drains(sim.ready(s0.member)), [], 'a ready successor waits for the others')
  t.same(drains(sim.ready(s1.member)), [])
  t.same(drains(sim.exit(s2.member, 1)), ['rollback', 'rollback'], 'a rollback stops the new workers that waited')
  sim.exit(s0.member, 0)
  sim.exit(s1.member, 0)
  sim.feed({ type: 'reload', ticket: 2 })
  const news = forks(sim.feed(newConfig(3, { ...POLICY, maxMemoryMb: 100 })))
  t.equal(news.length, 3)
  sim.ready(news[0].member)
  sim.ready(news[1].member)
  t.same(drains(sim.ready(news[2].member)), ['reload', 'reload', 'reload'])
  t.same(drains(sim.feed({ type: 'scale', workers: 2 })), ['scale'])
  const [a] = sim.currents() as number[]
  sim.feed({ type: 'beat', member: a, stats: beat({ rssBytes: 200 * 1024 * 1024, heapUsedBytes: 1, eventLoopDelayMs: 0, requests: 0, inflight: 0, refused: 0, connections: 0 }) })
  const successor = sim.state.slots[0].successor!
  t.same(drains(sim.ready(successor)), ['recycle'])
  const [, b] = sim.currents() as number[]
  t.same(drains(sim.feed({ type: 'draining', member: b })), ['signal'])
  t.same(drains(sim.feed({ type: 'stop', signal: 'SIGTERM' })), ['shutdown'])
})

t.test('a worker that exits during its drain with requests open: drain-cut with the counts, at warn; the shutdown exits 1', async (t) => {
  const sim = running(2)
  const [a, b] = sim.currents() as number[]
  sim.feed({ type: 'stop', signal: 'SIGINT' })
  sim.feed({ type: 'exiting', member: a, inflight: 1, connections: 2 })
  const cut = sim.exit(a, 0)
  t.match(eventOf(cut, 'worker.exit'), { fields: { reason: 'drain-cut', cause: 'shutdown', inflight: 1, connections: 2, expected: true } })
  sim.feed({ type: 'exiting', member: b, inflight: 0, connections: 0 })
  const done = sim.exit(b, 0)
  t.match(eventOf(done, 'worker.exit'), { fields: { reason: 'drained', cause: 'shutdown' } })
  t.notOk('inflight' in eventOf(done, 'worker.exit')!.fields, 'no counts when nothing was cut')
  t.match(eventOf(done, 'shutdown.complete')!.fields, { exitCode: 1, killed: 0, cut: 1 })
  t.match(ofKind(done, 'exit'), [{ code: 1 }])
})

t.test('worker.exit levels: a crash is an error, an unasked exit 0 a warning, a drain info', async (t) => {
  const sim = running(2)
  const [a, b] = sim.currents() as number[]
  const crashed = eventOf(sim.exit(a, 1), 'worker.exit')!
  t.match(crashed, { fields: { reason: 'crashed' }, stderrOf: a }, 'a crash carries its stderr tail')
  t.equal(levelOf('worker.exit', crashed.fields as EventFields['worker.exit']), 'error')
  const exited = eventOf(sim.exit(b, 0), 'worker.exit')!
  t.equal(levelOf('worker.exit', exited.fields as EventFields['worker.exit']), 'warn')
})

t.test('a worker that drains by itself: its slot is filled after a short hold, not at once', async (t) => {
  const sim = running(1)
  const [a] = sim.currents() as number[]
  const steps = sim.feed({ type: 'draining', member: a })
  t.same(events(steps), ['worker.drain'])
  t.same(forks(steps), [])
  t.match(ofKind(steps, 'timer').find((x) => x.key === timerKey.slot(0)), { ms: SELF_DRAIN_HOLD_MS })
  t.match(forks(sim.fire(timerKey.slot(0))), [{ slot: 0 }])
  t.same(events(sim.exit(a, 0)), ['worker.exit'], 'its exit is expected')
})

t.test('not ready in time: killed and counted; hung: killed and counted; a stalled primary blames no one', async (t) => {
  const sim = new Sim(1, { readyTimeoutMs: 1000, heartbeatTimeoutMs: 400 })
  sim.start()
  t.same(ofKind(sim.fire(timerKey.ready(1)), 'kill'), [{ do: 'kill', member: 1 }])
  t.match(eventOf(sim.exit(1, null, 'SIGKILL'), 'worker.exit')!.fields, { reason: 'not-ready', expected: false })
  sim.fireNext()
  sim.readyAll()
  const id = sim.currents()[0]!
  sim.now += 100
  t.same(sim.feed({ type: 'check' }), [])
  sim.now += 100
  sim.feed({ type: 'check' })
  sim.now += 2000 // the check itself ran far too late: the primary was stalled
  t.same(sim.feed({ type: 'check' }), [], 'no one is blamed for beats the primary did not read')
  for (let i = 0; i < 4; i++) {
    sim.now += 100
    t.same(sim.feed({ type: 'check' }), [], `no beat for ${(i + 1) * 100} ms of 400: not hung`)
  }
  sim.now += 100
  const hung = sim.feed({ type: 'check' })
  t.same(events(hung), ['worker.hung'])
  t.same(ofKind(hung, 'kill'), [{ do: 'kill', member: id }])
  sim.now += 100
  t.same(sim.feed({ type: 'check' }), [], 'killed once, not at every check')
  t.match(eventOf(sim.exit(id, null, 'SIGKILL'), 'worker.exit')!.fields, { reason: 'hung' })
})

t.test('memory recycling and scaling down', async (t) => {
  const sim = running(3, { maxMemoryMb: 100 })
  const big = beat({ rssBytes: 200 * 1024 * 1024, heapUsedBytes: 1, requests: 5 })
  const steps = sim.feed({ type: 'beat', member: sim.currents()[1]!, stats: big })
  t.match(eventOf(steps, 'worker.recycle')!.fields, { reason: 'memory', rssMb: 200, maxMemoryMb: 100 })
  const down = sim.feed({ type: 'scale', delta: -2 })
  t.same(events(down), ['scale', 'worker.drain', 'worker.drain', 'worker.drain'], 'slot 2, then slot 1 with its successor')
  t.equal(sim.state.slots.length, 1)
  t.same(sim.feed({ type: 'scale', workers: 0 }), [], 'never below one worker')
})

t.test('a held slot scaled away cancels its timer; scaling back up forks at once', async (t) => {
  const sim = running(2)
  sim.exit(sim.currents()[1]!, 1)
  t.ok(sim.timers.has(timerKey.slot(1)))
  sim.feed({ type: 'scale', workers: 1 })
  t.notOk(sim.timers.has(timerKey.slot(1)), 'the restart timer is cancelled')
  t.match(forks(sim.feed({ type: 'scale', workers: 2 })), [{ slot: 1 }])
})

t.test('shutdownDelayMs: SIGTERM keeps the workers serving, unready, until the delay is over; a second SIGTERM drains now', async (t) => {
  const sim = running(2, { shutdownDelayMs: 1500 })
  const stopping = sim.feed({ type: 'stop', signal: 'SIGTERM' })
  t.same(events(stopping), ['shutdown.start'])
  t.match(eventOf(stopping, 'shutdown.start')!.fields, { delayMs: 1500 })
  t.same(ofKind(stopping, 'unready').map((s) => s.member), sim.currents())
  t.same(ofKind(stopping, 'drain'), [], 'nothing drains yet')
  t.equal(sim.state.lifecycle, 'stopping')
  const over = sim.fire(timerKey.shutdownDelay)
  t.same(events(over), ['worker.drain', 'worker.drain'])

  const again = running(1, { shutdownDelayMs: 30_000 })
  again.feed({ type: 'stop', signal: 'SIGTERM' })
  const second = again.feed({ type: 'stop', signal: 'SIGTERM' })
  t.same(ofKind(second, 'cancel').map((s) => s.key), [timerKey.shutdownDelay, timerKey.ready(1)])
  t.same(events(second), ['worker.drain'], 'the second signal skips the delay')
  const third = again.feed({ type: 'stop', signal: 'SIGTERM' })
  t.match(eventOf(third, 'shutdown.start')!.fields, { fast: true }, 'a third kills')

  const now = running(1, { shutdownDelayMs: 30_000 })
  t.same(events(now.feed({ type: 'stop', signal: 'SIGINT' })), ['shutdown.start', 'worker.drain'], 'Ctrl-C does not wait')
  const cmd = running(1, { shutdownDelayMs: 30_000 })
  t.same(events(cmd.feed({ type: 'stop', signal: 'control' })), ['shutdown.start', 'worker.drain'], 'nor does a command')
})

t.test('the totals count exits by reason, crashes and reloads', async (t) => {
  const sim = running(1)
  sim.exit(sim.currents()[0]!, 1)
  sim.fireNext()
  sim.readyAll()
  sim.feed({ type: 'reload' })
  sim.feed(newConfig(1))
  sim.readyAll()
  sim.exitLeaving()
  t.same(sim.state.totals, { exits: { crashed: 1, drained: 1 }, reloads: { complete: 1, aborted: 0 }, crashes: 1 })
  t.match(sim.state.lastReload, { outcome: 'complete', generation: 1 })
})
