// A world for the pure plan: a clock, the worker processes the plan forked (alive
// until an exit is fed back), and the timers it set. No process, no real time.
import { decide, initialState, type Input, type Policy, type State, type Step, type Emit } from '../../lib/supervisor/plan.js'
import type { HeartbeatStats } from '../../lib/protocol/messages.js'

/** A member as the plan's state holds it. */
type Member = State['members'] extends Map<number, infer M> ? M : never

/** What primary.start announces; the plan passes it on as it is. */
export const ANNOUNCE = {
  pid: 1,
  workers: 2,
  workersReason: 'set by test',
  schedulingPolicy: 'rr' as const,
  app: '/app/server.js',
  appSource: 'test',
  configFile: null,
  node: 'v0',
  name: 'test',
  controlSocket: false as const,
  metrics: null,
}

/** A heartbeat's figures, all zero but what is given. */
export const beat = (stats: Partial<HeartbeatStats> = {}): HeartbeatStats => ({
  rssBytes: 0, heapUsedBytes: 0, eventLoopDelayMs: 0, requests: 0, inflight: 0, refused: 0, abandoned: 0, connections: 0, accepted: 0, cpuMicros: 0, ...stats,
})

export const POLICY: Policy = {
  readiness: 'listening',
  restartBackoff: { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0, resetAfterMs: 30_000 },
  maxCrashRate: { crashes: 5, windowMs: 60_000 },
  stopOnExitCodes: [],
  readyTimeoutMs: 10_000,
  shutdownTimeoutMs: 10_000,
  heartbeatTimeoutMs: 30_000,
  maxMemoryMb: 0,
  maxRequests: 0,
  maxRequestsJitter: 0,
  shutdownDelayMs: 0,
}

export class Sim {
  state: State
  now = 1_000_000
  /** every step of every pass, in order */
  readonly log: Step[] = []
  /** forked and not yet exited */
  readonly alive = new Set<number>()
  readonly timers = new Map<string, { dueAt: number, input: Input }>()
  readonly replies = new Map<number, string>()
  random: () => number = () => 0.5

  constructor (workers: number, policy: Partial<Policy> = {}) {
    this.state = initialState(workers, { ...POLICY, ...policy })
  }

  /** One pass over these inputs; returns its steps. */
  feed (...inputs: Input[]): Step[] {
    const { state, steps } = decide(this.state, inputs, { now: this.now, random: this.random })
    this.state = state
    for (const step of steps) {
      this.log.push(step)
      if (step.do === 'fork') this.alive.add(step.member)
      if (step.do === 'timer') this.timers.set(step.key, { dueAt: this.now + step.ms, input: step.input })
      if (step.do === 'cancel') this.timers.delete(step.key)
      if (step.do === 'reply') this.replies.set(step.ticket, step.outcome)
    }
    return steps
  }

  start (): Step[] { return this.feed({ type: 'start', announce: ANNOUNCE }) }

  /** Reports every starting worker ready (as the 'listening' event does). */
  readyAll (): Step[] {
    const starting = [...this.state.members.values()].filter((m) => m.phase === 'starting').map((m) => m.id)
    return this.feed(...starting.map((member) => ({ type: 'listening' as const, member, address: '127.0.0.1:1' })))
  }

  ready (member: number): Step[] { return this.feed({ type: 'listening', member, address: '127.0.0.1:1' }) }

  exit (member: number, code: number | null = 1, signal: string | null = null): Step[] {
    this.alive.delete(member)
    return this.feed({ type: 'exit', member, code, signal })
  }

  /** Every worker the plan asked to drain or kill exits, as a well-behaved one does. */
  exitLeaving (): Step[] {
    const leaving = [...this.state.members.values()].filter((m) => m.phase === 'draining' || m.leaving).map((m) => m.id)
    const steps: Step[] = []
    for (const id of leaving) steps.push(...this.exit(id, 0))
    return steps
  }

  /** Fires the earliest timer, moving the clock to it. */
  fireNext (): Step[] | undefined {
    const next = [...this.timers.entries()].sort((a, b) => a[1].dueAt - b[1].dueAt)[0]
    if (!next) return undefined
    const [key, { dueAt, input }] = next
    this.timers.delete(key)
    this.now = Math.max(this.now, dueAt)
    return this.feed(input)
  }

  fire (key: string): Step[] {
    const timer = this.timers.get(key)
    if (!timer) throw new Error(`no timer ${key}; have ${[...this.timers.keys()].join(', ')}`)
    this.timers.delete(key)
    this.now = Math.max(this.now, timer.dueAt)
    return this.feed(timer.input)
  }

  /** The member serving each slot. */
  currents (): Array<number | undefined> { return this.state.slots.map((s) => s.current) }
  member (id: number): Member | undefined { return this.state.members.get(id) }
  byPhase (phase: string): Member[] { return [...this.state.members.values()].filter((m) => m.phase === phase) }
  readyServing (): number {
    return this.state.slots.filter((s) => s.current !== undefined && this.state.members.get(s.current)?.phase === 'ready').length
  }
}

/** The events of these steps, but worker.listening (which every ready() here adds). */
export const events = (steps: Step[]): string[] => steps.filter((s): s is Emit => s.do === 'emit' && s.event !== 'worker.listening').map((s) => s.event)
export const eventOf = (steps: Step[], name: string): Emit | undefined => steps.find((s): s is Emit => s.do === 'emit' && s.event === name)
export const forks = (steps: Step[]) => steps.filter((s): s is Extract<Step, { do: 'fork' }> => s.do === 'fork')
export const ofKind = <K extends Step['do']>(steps: Step[], kind: K) => steps.filter((s): s is Extract<Step, { do: K }> => s.do === kind)
