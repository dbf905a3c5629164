// The plan driven by random sequences of facts and commands (fast-check), with its
// invariants checked after every pass.
import t from 'tap'
import fc from 'fast-check'
import type { Input, Step } from '../lib/supervisor/plan.js'
import { Sim, ANNOUNCE, beat, forks } from './helpers/plan-sim.js'

type Command =
  | { k: 'ready', pick: number }
  | { k: 'exit', pick: number, code: number | null, signal: string | null }
  | { k: 'draining', pick: number }
  | { k: 'listen-failed', pick: number }
  | { k: 'beat', pick: number, requests: number, rssMb: number }
  | { k: 'timer' }
  | { k: 'advance', ms: number }
  | { k: 'check' }
  | { k: 'scale', workers: number }
  | { k: 'scaleBy', delta: number }
  | { k: 'reload' }
  | { k: 'recycle', slot: number }
  | { k: 'config', ok: boolean, workers: number }
  | { k: 'stop', signal: string }

const pick = fc.nat(50)
const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant('ready' as const), pick }), weight: 6 },
  { arbitrary: fc.record({ k: fc.constant('exit' as const), pick, code: fc.constantFrom(0, 1, 7, null), signal: fc.constantFrom(null, 'SIGKILL') }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('draining' as const), pick }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('listen-failed' as const), pick }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('beat' as const), pick, requests: fc.nat(200), rssMb: fc.nat(300) }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('timer' as const) }), weight: 4 },
  { arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 5000 }) }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('check' as const) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('scale' as const), workers: fc.integer({ min: 0, max: 5 }) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('scaleBy' as const), delta: fc.integer({ min: -2, max: 2 }) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('reload' as const) }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('recycle' as const), slot: fc.nat(5) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('config' as const), ok: fc.boolean(), workers: fc.integer({ min: 1, max: 4 }) }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('stop' as const), signal: fc.constantFrom('SIGTERM', 'SIGINT', 'stop') }), weight: 1 }
)

const policy = fc.record({
  maxCrashRate: fc.record({ crashes: fc.integer({ min: 1, max: 6 }), windowMs: fc.integer({ min: 500, max: 20_000 }) }),
  maxRequests: fc.constantFrom(0, 50, 150),
  maxMemoryMb: fc.constantFrom(0, 200),
  stopOnExitCodes: fc.constantFrom([], [7]),
  shutdownDelayMs: fc.constantFrom(0, 1000),
})

const MiB = 1024 * 1024

type Generated<A> = A extends fc.Arbitrary<infer T> ? T : never

/** The breaker's rule, written again here as the oracle: more than `crashes` within `windowMs`. */
class CrashOracle {
  #times: number[] = []
  constructor (readonly crashes: number, readonly windowMs: number, readonly now: () => number) {}
  /** Records a crash; whether the rate is now exceeded. */
  record (): boolean {
    const now = this.now()
    this.#times = [...this.#times.filter((at) => now - at < this.windowMs), now]
    return this.#times.length > this.crashes
  }

  get count (): number { return this.#times.length }
}

/** Runs one sequence, checking the invariants after every pass; throws on a broken one. */
function runSequence (initialWorkers: number, p: Generated<typeof policy>, commands: Command[]): void {
  const sim = new Sim(initialWorkers, p)
  const oracle = { window: new CrashOracle(p.maxCrashRate.crashes, p.maxCrashRate.windowMs, () => sim.now) }
  let stopped = false
  let exits = 0
  let ticket = 0

  const pass = (inputs: Input[]): void => {
    const before = sim.readyServing()
    const serving = new Set(sim.state.slots.map((s) => s.current).filter((m) => m !== undefined && sim.member(m)?.phase === 'ready'))
    const wishBefore = sim.state.wish.workers
    const steps: Step[] = sim.feed(...inputs)
    check(steps, inputs, { before, serving, wishBefore })
  }

  const check = (steps: Step[], inputs: Input[], was: { before: number, serving: Set<number | undefined>, wishBefore: number }): void => {
    const { state } = sim
    // a slot has at most one current worker and one successor; each member is in one slot at most
    const placed = new Map<number, string>()
    for (const slot of state.slots) {
      for (const role of ['current', 'successor'] as const) {
        const id = slot[role]
        if (id === undefined) continue
        assert(!placed.has(id), `member ${id} is ${placed.get(id)} and ${role} of slot ${slot.id}`)
        placed.set(id, `${role} of slot ${slot.id}`)
        const m = state.members.get(id)
        assert(m !== undefined, `slot ${slot.id}'s ${role} ${id} is not a member`)
        assert(m.phase !== 'draining', `slot ${slot.id}'s ${role} ${id} is draining`)
        assert(m.slot === slot.id, `member ${id} of slot ${m.slot} sits in slot ${slot.id}`)
      }
    }
    // every live worker is in a slot or draining
    for (const m of state.members.values()) {
      assert(placed.has(m.id) || m.phase === 'draining', `member ${m.id} (${m.phase}) is neither in a slot nor draining`)
    }
    assert(state.slots.length <= state.wish.workers || state.lifecycle !== 'running', 'more slots than wished')
    // the ready workers in service never fall, but for a crash, a worker leaving by itself, a scale-down or a stop
    const disturbed = inputs.some((i) =>
      ((i.type === 'exit' || i.type === 'draining') && was.serving.has(i.member)) ||
      i.type === 'stop' || (i.type === 'scale' && state.wish.workers < was.wishBefore) ||
      (i.type === 'config' && state.wish.workers < was.wishBefore) ||
      // a rollback restores a smaller wish
      (i.type === 'exit' && state.wish.workers < was.wishBefore))
    if (!disturbed && state.lifecycle === 'running') {
      assert(sim.readyServing() >= was.before, `ready workers in service fell from ${was.before} to ${sim.readyServing()} on ${JSON.stringify(inputs)}`)
    }
    // a reload moves each client once: it drains old workers that served only when no old one still serves in a slot
    if (steps.some((step) => step.do === 'emit' && step.event === 'worker.drain' && step.fields.reason === 'reload' &&
      state.members.get(step.member!)?.readyAt !== undefined)) {
      for (const slot of state.slots) {
        const m = slot.current === undefined ? undefined : state.members.get(slot.current)
        assert(m?.phase !== 'ready' || m.generation === state.wish.generation, `a reload drained an old worker while slot ${slot.id}'s old worker ${m?.id ?? -1} still serves`)
      }
    }
    // nothing is forked once a stop began
    if (stopped) assert(forks(steps).length === 0, 'forked after a stop')
    if (state.lifecycle === 'stopping' || state.lifecycle === 'stopped') stopped = true
    // the crash breaker trips exactly when the window says so
    // (a new config, and a rollback to the previous one, start a new window)
    for (const step of steps) {
      if (step.do !== 'emit') continue
      if (step.event === 'reload.start' || (step.event === 'reload.aborted' && step.fields.reason !== 'invalid configuration')) {
        oracle.window = new CrashOracle(state.policy.maxCrashRate.crashes, state.policy.maxCrashRate.windowMs, () => sim.now)
      }
      const counted = step.event === 'worker.restart' || step.event === 'crash-rate.exceeded' ||
        (step.event === 'boot.failed' && step.fields.cause === 'crash-rate')
      if (!counted) continue
      const exceeded = oracle.window.record()
      assert(exceeded === (step.event !== 'worker.restart'), `${step.event} with ${oracle.window.count} crashes in the window (limit ${p.maxCrashRate.crashes})`)
    }
    for (const step of steps) {
      if (step.do === 'exit') {
        exits++
        assert(state.lifecycle === 'stopped' && state.members.size === 0, 'exited with workers left')
      }
    }
    assert(exits <= 1, 'exited twice')
    // a fork is of the wished generation
    for (const f of forks(steps)) assert(f.generation === state.wish.generation || state.reload === undefined, `forked generation ${f.generation}, wish ${state.wish.generation}`)
  }

  const members = (): number[] => [...sim.alive].sort((a, b) => a - b)
  const chosen = (n: number): number | undefined => { const all = members(); return all.length ? all[n % all.length] : undefined }

  pass([{ type: 'start', announce: ANNOUNCE }])
  for (const c of commands) {
    switch (c.k) {
      case 'ready': { const m = chosen(c.pick); if (m !== undefined) pass([{ type: 'listening', member: m, address: 'x' }]); break }
      case 'exit': { const m = chosen(c.pick); if (m !== undefined) { sim.alive.delete(m); pass([{ type: 'exit', member: m, code: c.code, signal: c.signal }]) } break }
      case 'draining': { const m = chosen(c.pick); if (m !== undefined) pass([{ type: 'draining', member: m }]); break }
      case 'listen-failed': { const m = chosen(c.pick); if (m !== undefined) pass([{ type: 'listen-failed', member: m, address: '127.0.0.1:1', code: 'EADDRINUSE', message: 'in use' }]); break }
      case 'beat': { const m = chosen(c.pick); if (m !== undefined) pass([{ type: 'beat', member: m, stats: beat({ rssBytes: c.rssMb * MiB, heapUsedBytes: 1, eventLoopDelayMs: 0, requests: c.requests, inflight: 0 }) }]); break }
      case 'timer': {
        const next = [...sim.timers.entries()].sort((a, b) => a[1].dueAt - b[1].dueAt)[0]
        if (next) { sim.timers.delete(next[0]); sim.now = Math.max(sim.now, next[1].dueAt); pass([next[1].input]) }
        break
      }
      case 'advance': sim.now += c.ms; break
      case 'check': pass([{ type: 'check' }]); break
      case 'scale': pass([{ type: 'scale', workers: c.workers }]); break
      case 'scaleBy': pass([{ type: 'scale', delta: c.delta }]); break
      case 'reload': pass([{ type: 'reload', ticket: ++ticket }]); break
      case 'recycle': pass([{ type: 'recycle', workerId: c.slot }]); break
      case 'config':
        pass([c.ok ? { type: 'config', ok: true, workers: c.workers, policy: sim.state.policy } : { type: 'config', ok: false, error: 'bad', issues: [] }])
        break
      case 'stop': pass([{ type: 'stop', signal: c.signal }]); break
    }
  }
  // Left alone (workers start, drains end, timers fire), a running cluster settles:
  // a reload under way completes or rolls back, and every slot has a ready worker.
  const settled = (): boolean => {
    const { state } = sim
    return state.reload === undefined && state.slots.length === state.wish.workers && state.slots.every((slot) =>
      slot.successor === undefined && state.members.get(slot.current!)?.phase === 'ready' &&
      state.members.get(slot.current!)?.generation === state.wish.generation)
  }
  for (let round = 0; round < 100 && sim.state.lifecycle === 'running'; round++) {
    const { state } = sim
    const starting = sim.byPhase('starting').map((m) => m.id)
    const leaving = [...state.members.values()].filter((m) => m.phase === 'draining' || m.leaving).map((m) => m.id)
    if (state.reload?.phase === 'reading') pass([{ type: 'config', ok: true, workers: state.wish.workers, policy: state.policy }])
    else if (starting.length) pass(starting.map((member) => ({ type: 'listening' as const, member, address: 'x' })))
    else if (leaving.length) {
      for (const member of leaving) sim.alive.delete(member)
      pass(leaving.map((member) => ({ type: 'exit' as const, member, code: 0, signal: null })))
    } else if (!settled()) {
      const next = [...sim.timers.entries()].sort((a, b) => a[1].dueAt - b[1].dueAt)[0]
      if (!next) break
      sim.timers.delete(next[0])
      sim.now = Math.max(sim.now, next[1].dueAt)
      pass([next[1].input])
    } else break
  }
  if (sim.state.lifecycle === 'running') {
    assert(sim.state.reload === undefined, `a reload never ended (${sim.state.reload?.phase})`)
    assert(settled(), 'the cluster did not settle with a ready worker of the wished generation in every slot')
  }
  // Whatever happened, a stop ends it: every worker drains or is killed, and the cluster exits once.
  pass([{ type: 'stop', signal: 'SIGTERM' }])
  for (let i = 0; i < 200 && sim.alive.size; i++) {
    const m = members()[0]
    sim.alive.delete(m)
    pass([{ type: 'exit', member: m, code: 0, signal: null }])
  }
  assert(exits === 1, `the cluster exited ${exits} times`)
  assert(sim.state.lifecycle === 'stopped', 'the cluster stopped')
  for (const ticketId of Array.from({ length: ticket }, (_, i) => i + 1)) {
    assert(sim.replies.has(ticketId), `reload ${ticketId} got no answer`)
  }
}

function assert (ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message)
}

t.test('invariants hold after every pass of random sequences', async (t) => {
  const started = Date.now()
  const runs = 10000
  fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), policy, fc.array(command, { maxLength: 80 }), runSequence), { numRuns: runs })
  t.pass(`${runs} sequences of up to 80 commands in ${Date.now() - started} ms`)
})
