// The supervisor's decisions, as one pure function: decide(state, inputs, clock)
// records each input (a fact about a worker, a timer that fired, a command), then
// reconciles the wish (N slots, each wanting a ready worker of the current
// generation) with the facts, and returns the new state and the steps for the
// applier to carry out: fork, drain, kill, set or cancel a timer, read the config,
// reply to a caller, and the events to emit once the pass is complete.
//
// Reload = bump the generation; scale = change N; recycle = mark a worker stale; a
// crash = an empty slot held back by its backoff. The reconcile step replaces an
// outdated or stale worker the same way for all of them: a successor starts in its
// slot, and only once it is ready does the old one drain. No process, no clock, no
// randomness here but what the caller passes in: every branch runs in unit and
// property tests without a single fork.
import type { HeartbeatStats } from '../protocol/messages.js'
import type { DrainCause, ExitReason, ExitRecord, Leaving, ReloadOutcome, Warning, WorkerPhase } from '../common/lifecycle.js'
import type { Emit, EventFields, EventName, Planned } from './events.js'
import { restartAfterCrash, type BackoffPolicy } from './backoff.js'
import { breakerCanTrip, crashesInWindow, inWindow, recordCrash, type CrashRate } from './crash-window.js'
import { classifyExit } from './exit-reason.js'
import { findHung, heartbeatEvery } from './heartbeat-check.js'

/** The part of the config the decisions read. */
export interface Policy {
  readiness: 'listening' | 'message'
  restartBackoff: BackoffPolicy
  maxCrashRate: CrashRate
  stopOnExitCodes: readonly number[]
  readyTimeoutMs: number
  shutdownTimeoutMs: number
  heartbeatTimeoutMs: number
  maxMemoryMb: number
  maxRequests: number
  maxRequestsJitter: number
  /** on SIGTERM, how long the workers keep serving, unready, before the drain starts */
  shutdownDelayMs: number
}

/**
 * A worker process as the plan knows it (a member of the cluster). Its `id` is the
 * plan's own key for the process, unique for the life of the primary (not a pid, which
 * only the applier knows); its `slot` is what the public names call workerId.
 */
interface MemberFacts {
  id: number
  slot: number
  generation: number
  phase: WorkerPhase
  forkedAt: number
  readyAt?: number
  drainStartedAt?: number
  leaving?: Leaving
  /** why it was drained */
  drainCause?: DrainCause
  /** what it still had open as it exited, as it reported */
  openAtExit?: { inflight: number, connections: number }
  /** the supervisor killed it at its drain deadline */
  killedAtDeadline: boolean
  /** why it should be replaced (recycling) */
  stale?: 'memory' | 'max-requests' | 'asked'
  /** the request count at which it is recycled (0: never) */
  requestLimit: number
  lastBeatAt: number
  stats?: HeartbeatStats
  /** connections it ended at its drain's deadline, as it reported */
  destroyed?: number
  /** the addresses its servers listen on */
  listening?: string[]
  /** a server of its app could not listen */
  listenFailed?: { address: string, code: string, message: string }
}

interface SlotFacts {
  id: number
  /** the member serving this slot */
  current?: number
  /** the member starting to take over from `current` */
  successor?: number
  /** consecutive crashes, for the backoff */
  attempt: number
  /** a restart delay runs: nothing is forked for this slot until it ends */
  held: boolean
  restarts: number
}

interface ReloadFacts {
  /** reading the config, then replacing the workers */
  phase: 'reading' | 'replacing'
  startedAt: number
  queued: boolean
  /** the callers waiting for the outcome */
  waiters: number[]
  /** what an abort goes back to */
  previous: { generation: number, workers: number, policy: Policy }
  /** a scale asked for while the config was read: it wins over the config's count */
  scaleTo?: number
}

export interface State {
  lifecycle: 'idle' | 'running' | 'stopping' | 'stopped'
  wish: { workers: number, generation: number }
  policy: Policy
  slots: SlotFacts[]
  members: Map<number, MemberFacts>
  nextMember: number
  /** a reload's generation: never one used before, even after a rollback */
  nextGeneration: number
  reload?: ReloadFacts
  /** start() resolved: every slot had a ready worker once */
  started: boolean
  /** generations of which some worker became ready */
  readyGenerations: number[]
  /** crash times inside the crash-rate window */
  crashes: number[]
  lastExits: ExitRecord[]
  lastReload?: { outcome: 'complete' | 'aborted', at: number, generation: number, reason?: string }
  /** when the start was recorded */
  startedAt: number
  /** running totals, for status and metrics */
  totals: { exits: Partial<Record<ExitReason, number>>, reloads: { complete: number, aborted: number }, crashes: number }
  /** killed: workers killed at their drain's deadline; cut: workers that exited during their drain with requests or connections open */
  stop?: { signal: string, startedAt: number, exitCode: number, killed: number, cut: number, delaying: boolean }
  lastCheckAt: number
}

export type { Emit, Warning }

export type Input =
  | { type: 'start', announce: EventFields['primary.start'], warnings?: Warning[] }
  | { type: 'listening', member: number, address: string }
  | { type: 'ready', member: number }
  /** the worker started draining by itself (a signal sent to it alone) */
  | { type: 'draining', member: number }
  | { type: 'beat', member: number, stats: HeartbeatStats }
  /** the draining worker ended this many connections itself at the deadline */
  | { type: 'destroyed', member: number, connections: number }
  | { type: 'exit', member: number, code: number | null, signal: string | null }
  /** a server of the worker's app could not listen (the app may have swallowed the error) */
  | { type: 'listen-failed', member: number, address: string, code: string, message: string }
  /** the worker is exiting, with this still open (it comes before its exit) */
  | { type: 'exiting', member: number, inflight: number, connections: number }
  | { type: 'slot-due', slot: number }
  | { type: 'ready-timeout', member: number }
  | { type: 'drain-deadline', member: number }
  /** the periodic hang check */
  | { type: 'check' }
  | { type: 'scale', workers?: number, delta?: number }
  | { type: 'reload', ticket?: number }
  /** replace the worker serving this slot, as a recycle does (the dashboard's action) */
  | { type: 'recycle', workerId: number }
  | { type: 'config', ok: true, workers: number, policy: Policy, warnings?: Warning[] }
  | { type: 'config', ok: false, error: string, issues: string[] }
  | { type: 'stop', signal: string, exitCode?: number }
  /** the shutdown delay is over: the drain starts */
  | { type: 'delay-over' }

export type Step =
  | { do: 'fork', member: number, slot: number, generation: number, requestLimit: number }
  /** a starting worker is stopped with SIGTERM; a serving one is asked to drain */
  | { do: 'drain', member: number, starting: boolean }
  | { do: 'kill', member: number }
  /** the worker keeps serving but reports itself not ready (the shutdown delay) */
  | { do: 'unready', member: number }
  | { do: 'timer', key: string, ms: number, input: Input }
  | { do: 'cancel', key: string }
  | { do: 'read-config' }
  /** the config just read runs from now on, as `generation` */
  | { do: 'adopt-config', generation: number }
  | { do: 'reply', ticket: number, outcome: ReloadOutcome }
  /** every slot has a ready worker: start() resolves */
  | { do: 'started' }
  /** the member has exited; the applier forgets it after the pass's events */
  | { do: 'forget', member: number }
  /** the cluster has stopped */
  | { do: 'exit', code: number, signal: string }
  | Emit

export interface Clock {
  now: number
  /** [0, 1), for the backoff's jitter and the request limit's */
  random: () => number
}

/**
 * How long a starting worker whose app could not listen may take to listen elsewhere
 * (an app that falls back to another port) before it is stopped as a boot failure.
 */
export const LISTEN_FAILED_GRACE_MS = 1000

/**
 * How long a slot whose worker drained by itself waits before it is filled again: a
 * signal to the whole process group (Ctrl-C, systemd's or Docker's stop) reaches the
 * primary too, and on a busy machine the primary may hear of it a good while after the
 * worker's message; its shutdown must not find new workers forked meanwhile.
 */
export const SELF_DRAIN_HOLD_MS = 1000

export const timerKey = {
  shutdownDelay: 'shutdown-delay',
  slot: (slot: number) => `slot:${slot}`,
  ready: (member: number) => `ready:${member}`,
  deadline: (member: number) => `deadline:${member}`,
}

/** The running totals of status and metrics: an upgrade's new primary starts from the old one's. */
export type Totals = State['totals']

export function initialState (workers: number, policy: Policy, totals?: Totals): State {
  return {
    lifecycle: 'idle',
    wish: { workers, generation: 0 },
    policy,
    slots: [],
    members: new Map(),
    nextMember: 1,
    nextGeneration: 1,
    started: false,
    readyGenerations: [],
    crashes: [],
    lastExits: [],
    lastCheckAt: 0,
    startedAt: 0,
    totals: totals ? { exits: { ...totals.exits }, reloads: { ...totals.reloads }, crashes: totals.crashes } : { exits: {}, reloads: { complete: 0, aborted: 0 }, crashes: 0 },
  }
}

/** Records the inputs in order, then reconciles. Pure: `state` is not changed. */
export function decide (state: State, inputs: readonly Input[], clock: Clock): { state: State, steps: Step[] } {
  const pass = new Pass(copy(state), clock)
  for (const input of inputs) pass.record(input)
  pass.reconcile()
  return { state: pass.state, steps: pass.steps }
}

const MiB = 1024 * 1024

class Pass {
  readonly steps: Step[] = []
  constructor (readonly state: State, readonly clock: Clock) {}

  get #now (): number { return this.clock.now }

  // ── record the facts ─────────────────────────────────────────────────────────

  record (input: Input): void {
    (this.#record[input.type] as (input: Input) => void)(input)
  }

  /** What each kind of input records: a table the compiler checks for a missing kind. */
  readonly #record: { [K in Input['type']]: (input: Extract<Input, { type: K }>) => void } = {
    start: (input) => {
      if (this.state.lifecycle !== 'idle') return
      this.state.lifecycle = 'running'
      this.state.lastCheckAt = this.#now
      this.state.startedAt = this.#now
      this.#emit('primary.start', input.announce)
      for (const warning of input.warnings ?? []) this.#emit('config.warning', warning)
      this.#warnAboutPolicy(this.state.policy, this.state.wish.workers)
    },
    listening: (input) => {
      const m = this.state.members.get(input.member)
      if (!m) return
      m.listening = [...m.listening ?? [], input.address]
      this.#emit('worker.listening', { workerId: m.slot, address: input.address }, m.id)
      if (this.state.policy.readiness === 'listening') this.#ready(m)
    },
    ready: (input) => {
      const m = this.state.members.get(input.member)
      if (m && this.state.policy.readiness === 'message') this.#ready(m)
    },
    draining: (input) => {
      const m = this.state.members.get(input.member)
      if (!m || m.phase === 'draining') return
      this.#drain(m, 'drained', 'signal')
      // Not filled at once: a Ctrl-C signals the primary too, whose shutdown must
      // not find a new set of workers.
      const slot = this.state.slots[m.slot]
      if (this.state.lifecycle === 'running' && slot && !slot.held) this.#hold(slot, SELF_DRAIN_HOLD_MS)
    },
    beat: (input) => {
      const m = this.state.members.get(input.member)
      if (!m) return
      m.stats = input.stats
      m.lastBeatAt = this.#now
      this.#checkRecycle(m)
    },
    destroyed: (input) => {
      // The drain's deadline came with connections still open: the worker ended them
      // itself, just before the primary would have killed it. It counts as a kill.
      const m = this.state.members.get(input.member)
      if (!m) return
      m.destroyed = input.connections
      if (!m.killedAtDeadline) {
        m.killedAtDeadline = true
        this.#emit('worker.killed', { workerId: m.slot, afterMs: this.#now - (m.drainStartedAt ?? this.#now), connectionsDestroyed: input.connections }, m.id)
      }
    },
    exit: (input) => this.#exit(input.member, input.code, input.signal),
    exiting: (input) => {
      const m = this.state.members.get(input.member)
      if (m) m.openAtExit = { inflight: input.inflight, connections: input.connections }
    },
    'listen-failed': (input) => {
      const m = this.state.members.get(input.member)
      if (!m) return
      const { address, code, message } = input
      this.#emit('worker.listen-failed', { workerId: m.slot, address, code, message }, m.id)
      if (m.phase !== 'starting' || m.listenFailed) return
      // An app that swallows the error (Express 5) would wait out readyTimeoutMs
      // and start again, forever: it gets a short grace to listen elsewhere instead.
      m.listenFailed = { address, code, message }
      this.steps.push({ do: 'timer', key: timerKey.ready(m.id), ms: LISTEN_FAILED_GRACE_MS, input: { type: 'ready-timeout', member: m.id } })
    },
    'slot-due': (input) => {
      const slot = this.state.slots[input.slot]
      if (slot) slot.held = false
    },
    'ready-timeout': (input) => {
      const m = this.state.members.get(input.member)
      if (!m || m.phase !== 'starting') return
      m.leaving = m.listenFailed ? 'listen-failed' : 'not-ready'
      this.steps.push({ do: 'kill', member: m.id })
    },
    'drain-deadline': (input) => {
      const m = this.state.members.get(input.member)
      if (!m) return
      if (!m.killedAtDeadline) this.#emit('worker.killed', { workerId: m.slot, afterMs: this.#now - (m.drainStartedAt ?? this.#now) }, m.id)
      m.killedAtDeadline = true
      this.steps.push({ do: 'kill', member: m.id })
    },
    check: () => this.#checkHung(),
    scale: (input) => this.#scale(input.workers ?? this.state.wish.workers + (input.delta ?? 0)),
    reload: (input) => this.#reload(input.ticket),
    recycle: (input) => this.#recycle(input.workerId),
    config: (input) => this.#configRead(input),
    stop: (input) => this.#stop(input.signal, input.exitCode ?? 0),
    'delay-over': () => this.#drainAll(),
  }

  #ready (m: MemberFacts): void {
    if (m.phase !== 'starting') return
    const s = this.state
    m.phase = 'ready'
    m.readyAt = this.#now
    if (!s.readyGenerations.includes(m.generation)) s.readyGenerations.push(m.generation)
    this.steps.push({ do: 'cancel', key: timerKey.ready(m.id) })
    this.#emit('worker.ready', { workerId: m.slot, generation: m.generation, startMs: m.readyAt - m.forkedAt }, m.id)
    const slot = s.slots[m.slot]
    // a reload's successors take over together, in reconcile, once the last is ready
    // (a recycle's successor, of the generation before, takes over at once, even while
    // a reload reads its config and has not yet moved the wished generation on)
    if (slot?.successor === m.id && !(s.reload?.phase === 'replacing' && m.generation === s.wish.generation)) this.#takeOver(slot)
  }

  /** The slot's successor becomes its worker; the one it replaces drains. */
  #takeOver (slot: SlotFacts): void {
    const s = this.state
    const old = slot.current === undefined ? undefined : s.members.get(slot.current)
    slot.current = slot.successor
    slot.successor = undefined
    if (old) this.#drain(old, old.stale ? 'recycled' : 'drained', old.stale ? 'recycle' : s.reload ? 'reload' : 'rollback')
  }

  #exit (id: number, code: number | null, signal: string | null): void {
    const s = this.state
    const m = s.members.get(id)
    if (!m) return
    s.members.delete(id)
    this.steps.push({ do: 'cancel', key: timerKey.ready(id) }, { do: 'cancel', key: timerKey.deadline(id) })
    // The slot it served, if it still did: a drained worker of a forgotten slot has none.
    const slot = [s.slots[m.slot]].find((x) => x?.current === id || x?.successor === id)
    if (slot?.current === id) slot.current = undefined
    if (slot?.successor === id) slot.successor = undefined
    const verdict = classifyExit({ leaving: m.leaving, killedAtDeadline: m.killedAtDeadline, code, signal, openAtExit: m.openAtExit })
    if (verdict.reason === 'drain-timeout' && s.stop) s.stop.killed++
    if (verdict.reason === 'drain-cut' && s.stop) s.stop.cut++
    s.lastExits = [...s.lastExits.slice(-4), { workerId: m.slot, code, signal, reason: verdict.reason }]
    s.totals.exits[verdict.reason] = (s.totals.exits[verdict.reason] ?? 0) + 1
    this.#emit('worker.exit', {
      workerId: m.slot,
      code,
      signal,
      uptimeMs: this.#now - m.forkedAt,
      expected: verdict.expected,
      reason: verdict.reason,
      ...(m.drainCause ? { cause: m.drainCause } : {}),
      ...(verdict.possibleOom ? { possibleOom: true as const } : {}),
      // what it cut by exiting, as it said on its way out
      ...(m.openAtExit && m.openAtExit.inflight + m.openAtExit.connections > 0 ? { inflight: m.openAtExit.inflight, connections: m.openAtExit.connections } : {}),
      // still open at the deadline: ended by the worker itself, or (killed) as last reported
      ...(verdict.reason === 'drain-timeout' ? { connectionsDestroyed: m.destroyed ?? m.stats?.connections ?? null } : {}),
    }, id, verdict.crash ? id : undefined)
    this.steps.push({ do: 'forget', member: id })

    if (s.lifecycle === 'stopping') return this.#finishWhenEmpty()
    if (s.lifecycle !== 'running' || !verdict.crash || !slot) return

    const cannotListen = m.listenFailed && m.readyAt === undefined
      ? ` (it could not listen on ${m.listenFailed.address}: ${m.listenFailed.code})`
      : ''
    if (s.reload?.phase === 'replacing' && m.generation === s.wish.generation && m.readyAt === undefined) {
      // A worker of the new generation that cannot start (a replacement, or one for a
      // slot the new config added) is the new code's fault, not the old workers': the
      // reload stops and rolls back, they keep serving, nothing is counted.
      return this.#abortReload(`worker ${m.slot} ${verdict.reason} before it was ready (code ${code}, signal ${signal})${cannotListen}`, id)
    }
    if (code !== null && s.policy.stopOnExitCodes.includes(code)) return this.#fail('stop-code', id)
    // An address in use or forbidden does not free itself in a backoff's time: a
    // generation that never served stops at once, with the cause.
    if (cannotListen && !s.readyGenerations.includes(m.generation)) return this.#fail('listen-failed', id, m.listenFailed)
    const crash = recordCrash(s.crashes, s.policy.maxCrashRate, this.#now)
    s.crashes = crash.times
    s.totals.crashes++
    if (crash.exceeded) return this.#fail('crash-rate', id)

    const upMs = m.readyAt === undefined ? 0 : this.#now - m.readyAt
    slot.restarts++
    const { attempt, delayMs } = restartAfterCrash(s.policy.restartBackoff, slot.attempt, upMs, this.clock.random)
    slot.attempt = attempt
    this.#emit('worker.restart', { workerId: slot.id, delayMs, attempt: slot.attempt })
    // The hold also keeps back a failed replacement of a still-serving worker (a
    // recycle): neither a worker nor a successor starts in the slot before it ends.
    if (slot.successor === undefined && delayMs > 0) this.#hold(slot, delayMs)
  }

  #checkRecycle (m: MemberFacts): void {
    if (m.phase !== 'ready' || m.stale || !m.stats) return
    const { maxMemoryMb } = this.state.policy
    const rssMb = Math.round(m.stats.rssBytes / MiB)
    if (maxMemoryMb > 0 && rssMb > maxMemoryMb) {
      m.stale = 'memory'
      this.#emit('worker.recycle', { workerId: m.slot, reason: 'memory', rssMb, maxMemoryMb }, m.id)
    } else if (m.requestLimit > 0 && m.stats.requests >= m.requestLimit) {
      m.stale = 'max-requests'
      this.#emit('worker.recycle', { workerId: m.slot, reason: 'max-requests', requests: m.stats.requests, limit: m.requestLimit }, m.id)
    }
  }

  #recycle (workerId: number): void {
    const s = this.state
    const slot = s.slots[workerId]
    const m = slot?.current === undefined ? undefined : s.members.get(slot.current)
    if (s.lifecycle !== 'running' || !m || m.phase !== 'ready' || m.stale) return
    m.stale = 'asked'
    this.#emit('worker.recycle', { workerId, reason: 'asked' }, m.id)
  }

  #checkHung (): void {
    const s = this.state
    const timeoutMs = s.policy.heartbeatTimeoutMs
    if (s.lifecycle !== 'running' || timeoutMs <= 0) return
    const ready = [...s.members.values()].filter((m) => m.phase === 'ready' && !m.leaving)
    const { hung, primaryStalled } = findHung(ready, this.#now, s.lastCheckAt, heartbeatEvery(timeoutMs), timeoutMs)
    s.lastCheckAt = this.#now
    if (primaryStalled) for (const m of ready) m.lastBeatAt = this.#now
    for (const m of hung) {
      this.#emit('worker.hung', { workerId: m.slot, heartbeatAgeMs: this.#now - m.lastBeatAt, timeoutMs }, m.id)
      m.leaving = 'hung'
      this.steps.push({ do: 'kill', member: m.id })
    }
  }

  // ── commands ─────────────────────────────────────────────────────────────────

  #scale (workers: number): void {
    const s = this.state
    const to = Math.max(1, Math.floor(workers))
    if (s.lifecycle !== 'running' || !Number.isFinite(to) || to === s.wish.workers) return
    if (s.reload?.phase === 'reading') s.reload.scaleTo = to
    // An explicit scale during the replacement is kept even if the reload rolls back.
    if (s.reload?.phase === 'replacing') s.reload.previous.workers = to
    this.#emit('scale', { from: s.wish.workers, to })
    s.wish.workers = to
  }

  #reload (ticket: number | undefined): void {
    const s = this.state
    const reply = (outcome: ReloadOutcome): void => { if (ticket !== undefined) this.steps.push({ do: 'reply', ticket, outcome }) }
    if (s.lifecycle !== 'running') return reply('stopped')
    if (s.reload) {
      if (s.reload.queued) {
        this.#emit('reload.ignored', { reason: 'a reload is running and another is queued' })
        return reply('ignored')
      }
      s.reload.queued = true
      this.#emit('reload.queued', {})
      return reply('queued')
    }
    // Set before the config is read, so that a reload asked for meanwhile is queued.
    s.reload = {
      phase: 'reading',
      startedAt: this.#now,
      queued: false,
      waiters: ticket === undefined ? [] : [ticket],
      previous: { generation: s.wish.generation, workers: s.wish.workers, policy: s.policy },
    }
    this.steps.push({ do: 'read-config' })
  }

  #configRead (input: Extract<Input, { type: 'config' }>): void {
    const s = this.state
    const reload = s.reload
    if (s.lifecycle !== 'running' || reload?.phase !== 'reading') return
    if (!input.ok) {
      return this.#endReload({ outcome: 'aborted', fields: { reason: 'invalid configuration', error: input.error, issues: input.issues } })
    }
    for (const warning of input.warnings ?? []) this.#emit('config.warning', warning)
    const workers = reload.scaleTo ?? input.workers
    if (workers !== s.wish.workers) this.#emit('scale', { from: s.wish.workers, to: workers })
    // said at start and again only when the reload changes what it is about
    const changed = workers !== s.wish.workers || JSON.stringify(input.policy) !== JSON.stringify(s.policy)
    s.wish = { workers, generation: s.nextGeneration++ }
    s.policy = input.policy
    s.crashes = []
    if (changed) this.#warnAboutPolicy(input.policy, workers)
    reload.phase = 'replacing'
    this.steps.push({ do: 'adopt-config', generation: s.wish.generation })
    this.#emit('reload.start', { generation: s.wish.generation, workers })
    // A successor of an older generation still starting (a recycle's, a rollback's)
    // would serve only to be replaced: it stops, and its slot gets one of the new.
    for (const slot of s.slots) {
      const m = slot.successor === undefined ? undefined : s.members.get(slot.successor)
      if (m && m.generation !== s.wish.generation) this.#drain(m, 'drained', 'reload')
    }
  }

  #abortReload (reason: string, culprit: number): void {
    const s = this.state
    // Back to the generation that ran before: workers forked from here on (crash
    // restarts, slots) are the old ones, and the new ones still starting are stopped;
    // new ones already serving are replaced like any outdated worker.
    const { previous } = s.reload!
    const failed = s.wish.generation
    s.wish = { workers: previous.workers, generation: previous.generation }
    s.policy = previous.policy
    s.crashes = []
    for (const m of s.members.values()) {
      // the new ones still starting, and those ready but waiting for the others to take over
      if (m.generation === failed && (m.phase === 'starting' || s.slots[m.slot]?.successor === m.id)) this.#drain(m, 'drained', 'rollback')
    }
    this.#endReload({ outcome: 'aborted', fields: { reason }, stderrOf: culprit })
  }

  #endReload (end: { outcome: 'complete', fields: Planned<'reload.complete'> } | { outcome: 'aborted', fields: Planned<'reload.aborted'>, stderrOf?: number }): void {
    const s = this.state
    const reload = s.reload!
    const { outcome } = end
    s.reload = undefined
    s.lastReload = { outcome, at: this.#now, generation: s.wish.generation, ...(end.outcome === 'aborted' ? { reason: end.fields.reason } : {}) }
    s.totals.reloads[outcome]++
    for (const ticket of reload.waiters) this.steps.push({ do: 'reply', ticket, outcome })
    if (end.outcome === 'complete') this.#emit('reload.complete', end.fields)
    else this.#emit('reload.aborted', end.fields, undefined, end.stderrOf)
    if (reload.queued) this.#reload(undefined)
  }

  #stop (signal: string, exitCode: number): void {
    const s = this.state
    if (s.lifecycle === 'stopping') {
      if (signal !== 'SIGINT' && signal !== 'SIGTERM') return
      // A second signal during the shutdown delay starts the drain now.
      if (s.stop!.delaying) {
        this.steps.push({ do: 'cancel', key: timerKey.shutdownDelay })
        return this.#drainAll()
      }
      // A second Ctrl-C or SIGTERM during the drain: kill what remains at once.
      this.#emit('shutdown.start', { signal, workers: s.members.size, fast: true })
      for (const m of s.members.values()) {
        m.killedAtDeadline = true
        this.steps.push({ do: 'kill', member: m.id })
      }
      return
    }
    if (s.lifecycle === 'stopped') return
    // Only SIGTERM waits: it is how orchestrators stop a pod or a unit, while their load
    // balancers are still sending; a Ctrl-C or a command means now.
    // With no worker left there is nothing to keep serving.
    const delayMs = signal === 'SIGTERM' && s.members.size > 0 ? s.policy.shutdownDelayMs : 0
    s.stop = { signal, startedAt: this.#now, exitCode, killed: 0, cut: 0, delaying: delayMs > 0 }
    if (s.lifecycle === 'idle') return this.#finish()
    s.lifecycle = 'stopping'
    // A Ctrl-C reaches the workers too, which may have started draining a moment before
    // the primary heard of it: theirs is the shutdown's drain.
    for (const m of s.members.values()) if (m.drainCause === 'signal') m.drainCause = 'shutdown'
    for (const slot of s.slots) {
      if (slot.held) this.steps.push({ do: 'cancel', key: timerKey.slot(slot.id) })
      slot.held = false
    }
    this.#emit('shutdown.start', { signal, workers: s.members.size, ...(delayMs > 0 ? { delayMs } : {}) })
    if (s.reload) {
      for (const ticket of s.reload.waiters) this.steps.push({ do: 'reply', ticket, outcome: 'stopped' })
      s.reload = undefined
    }
    if (delayMs > 0) {
      for (const m of s.members.values()) this.steps.push({ do: 'unready', member: m.id })
      this.steps.push({ do: 'timer', key: timerKey.shutdownDelay, ms: delayMs, input: { type: 'delay-over' } })
      return
    }
    this.#drainAll()
  }

  #drainAll (): void {
    const s = this.state
    if (s.lifecycle !== 'stopping') return
    s.stop!.delaying = false
    for (const m of s.members.values()) this.#drain(m, 'drained', 'shutdown')
    this.#finishWhenEmpty()
  }

  /** The cluster cannot go on: stop everything and exit non-zero so a service manager takes over. */
  #fail (cause: 'crash-rate' | 'stop-code' | 'listen-failed', culprit: number, listen?: MemberFacts['listenFailed']): void {
    const s = this.state
    const bootFailure = cause !== 'crash-rate' || !s.readyGenerations.includes(s.wish.generation)
    const facts = {
      crashes: inWindow(s.crashes, s.policy.maxCrashRate, this.#now).length,
      windowMs: s.policy.maxCrashRate.windowMs,
      lastExits: s.lastExits,
    }
    if (bootFailure) {
      this.#emit('boot.failed', {
        ...facts,
        cause,
        message: listen
          ? `the app cannot listen on ${listen.address}: ${listen.code} (${listen.message})`
          : s.lastExits.every((e) => e.reason === 'not-ready')
            ? `the app fails at boot: no worker became ready within readyTimeoutMs (${s.policy.readyTimeoutMs} ms); if it needs longer to start, raise readyTimeoutMs`
            : 'the app fails at boot: no worker of this generation ever became ready',
        ...(listen ? { address: listen.address, code: listen.code } : {}),
      }, undefined, culprit)
    } else {
      this.#emit('crash-rate.exceeded', facts)
    }
    this.#stop(cause, bootFailure ? 3 : 1)
  }

  #finishWhenEmpty (): void {
    if (this.state.members.size === 0) this.#finish()
  }

  #finish (): void {
    const s = this.state
    s.lifecycle = 'stopped'
    const { signal, startedAt, exitCode, killed, cut } = s.stop!
    // a worker killed at its deadline, or one that cut its requests short, ended work unfinished
    const code = exitCode || (killed + cut > 0 ? 1 : 0)
    this.#emit('shutdown.complete', { signal, durationMs: this.#now - startedAt, exitCode: code, killed, cut })
    this.steps.push({ do: 'exit', code, signal })
  }

  // ── reconcile ────────────────────────────────────────────────────────────────

  reconcile (): void {
    const s = this.state
    if (s.lifecycle !== 'running') return
    const desired = s.wish.workers

    // Scale down: drain the slots beyond the wish, highest first, and forget them.
    for (let id = s.slots.length - 1; id >= desired; id--) {
      const slot = s.slots[id]
      if (slot.held) this.steps.push({ do: 'cancel', key: timerKey.slot(id) })
      for (const member of [slot.successor, slot.current]) {
        const m = member === undefined ? undefined : s.members.get(member)
        if (m) this.#drain(m, 'drained', 'scale')
      }
    }
    s.slots.length = Math.min(s.slots.length, desired)

    // Fill: every slot without a worker and not held back gets one.
    for (let id = 0; id < desired; id++) {
      const slot = s.slots[id] ??= { id, attempt: 0, held: false, restarts: 0 }
      if (slot.current === undefined && slot.successor === undefined && !slot.held) slot.current = this.#fork(slot)
    }

    // Replace, so that the number of ready workers never drops. A reload starts a
    // successor in every outdated slot at once, and they take over together once all
    // are ready (below): a client whose connection an old worker closes reconnects to
    // a new one, never to an old one that would close it again. The cost is a second
    // set of workers while they start. An old worker that becomes ready after the
    // others' successors were forked gets one too, before any takes over. A recycle
    // replaces one slot at a time.
    const outdated = s.slots.filter((slot) => {
      const m = slot.current === undefined ? undefined : s.members.get(slot.current)
      return slot.successor === undefined && m?.phase === 'ready' && !slot.held &&
        (m.stale !== undefined || m.generation !== s.wish.generation)
    })
    const reloading = outdated.filter((slot) => s.members.get(slot.current!)!.generation !== s.wish.generation)
    const replacing = reloading.length ? reloading : s.slots.some((slot) => slot.successor !== undefined) ? [] : outdated.slice(0, 1)
    for (const slot of replacing) slot.successor = this.#fork(slot)

    // A reload's successors take over together once every one still starting is ready
    // (one drained meanwhile, by a scale-down or by itself, is not waited for) and no
    // old worker serves on without one (its slot held back after its successor left).
    if (s.reload?.phase === 'replacing') {
      const taking = s.slots.filter((slot) => slot.successor !== undefined)
      const uncovered = s.slots.some((slot) => slot.successor === undefined && slot.current !== undefined &&
        s.members.get(slot.current)?.phase === 'ready' && s.members.get(slot.current)?.generation !== s.wish.generation)
      if (!uncovered && taking.every((slot) => s.members.get(slot.successor!)?.phase === 'ready')) for (const slot of taking) this.#takeOver(slot)
    }

    const allReady = s.slots.every((slot) => slot.successor === undefined && slot.current !== undefined &&
      s.members.get(slot.current)?.phase === 'ready')
    if (!allReady) return
    if (!s.started) {
      s.started = true
      this.steps.push({ do: 'started' })
    }
    if (s.reload?.phase === 'replacing' && s.slots.every((slot) => s.members.get(slot.current!)!.generation === s.wish.generation)) {
      this.#endReload({ outcome: 'complete', fields: { generation: s.wish.generation, durationMs: this.#now - s.reload.startedAt } })
      // a queued reload starts reading its config now; nothing to reconcile until it is read
    }
  }

  #fork (slot: SlotFacts): number {
    const s = this.state
    const { maxRequests, maxRequestsJitter, readyTimeoutMs } = s.policy
    const id = s.nextMember++
    const requestLimit = maxRequests > 0 ? maxRequests + Math.floor(this.clock.random() * (maxRequestsJitter + 1)) : 0
    s.members.set(id, {
      id,
      slot: slot.id,
      generation: s.wish.generation,
      phase: 'starting',
      forkedAt: this.#now,
      killedAtDeadline: false,
      requestLimit,
      lastBeatAt: this.#now,
    })
    this.steps.push(
      { do: 'fork', member: id, slot: slot.id, generation: s.wish.generation, requestLimit },
      { do: 'timer', key: timerKey.ready(id), ms: readyTimeoutMs, input: { type: 'ready-timeout', member: id } }
    )
    this.#emit('worker.fork', { workerId: slot.id, generation: s.wish.generation }, id)
    return id
  }

  /** Takes a worker out of service: it leaves its slot, drains, and is killed at the deadline. */
  #drain (m: MemberFacts, why: Leaving, cause: DrainCause): void {
    if (m.phase === 'draining') return
    const slot = this.state.slots[m.slot]
    if (slot?.current === m.id) slot.current = undefined
    if (slot?.successor === m.id) slot.successor = undefined
    const starting = m.phase === 'starting'
    m.phase = 'draining'
    m.leaving ??= why
    m.drainCause = cause
    m.drainStartedAt = this.#now
    this.#emit('worker.drain', { workerId: m.slot, reason: cause, inflight: m.stats?.inflight ?? null, connections: m.stats?.connections ?? null }, m.id)
    this.steps.push(
      { do: 'cancel', key: timerKey.ready(m.id) },
      { do: 'drain', member: m.id, starting },
      { do: 'timer', key: timerKey.deadline(m.id), ms: this.state.policy.shutdownTimeoutMs, input: { type: 'drain-deadline', member: m.id } }
    )
  }

  #hold (slot: SlotFacts, ms: number): void {
    slot.held = true
    this.steps.push({ do: 'timer', key: timerKey.slot(slot.id), ms, input: { type: 'slot-due', slot: slot.id } })
  }

  #warnAboutPolicy (policy: Policy, workers: number): void {
    const { maxCrashRate, restartBackoff, readyTimeoutMs } = policy
    if (!breakerCanTrip(maxCrashRate, restartBackoff)) {
      return this.#emit('config.warning', {
        key: 'maxCrashRate',
        message: 'with this restartBackoff, a crash loop can never exceed maxCrashRate: the cluster would restart forever',
        crashes: maxCrashRate.crashes,
        windowMs: maxCrashRate.windowMs,
        maxMs: restartBackoff.maxMs,
      })
    }
    const notReady = crashesInWindow(maxCrashRate, restartBackoff, readyTimeoutMs, workers)
    if (notReady > maxCrashRate.crashes) return
    this.#emit('config.warning', {
      key: 'readyTimeoutMs',
      message: `a worker that never becomes ready is killed after readyTimeoutMs; with ${workers} worker${workers === 1 ? '' : 's'} at most ${notReady} such kills fit in maxCrashRate.windowMs, so the breaker can never trip and such an app restarts forever: lower readyTimeoutMs or maxCrashRate.crashes, or widen maxCrashRate.windowMs`,
      readyTimeoutMs,
      workers,
      crashes: maxCrashRate.crashes,
      windowMs: maxCrashRate.windowMs,
    })
  }

  /** An event to emit once the pass is complete; `member`: the worker whose pid the applier adds, `stderrOf`: whose stderr tail. */
  #emit<K extends EventName> (event: K, fields: Planned<K>, member?: number, stderrOf?: number): void {
    this.steps.push({ do: 'emit', event, fields, member, stderrOf } as Emit)
  }
}

function copy (s: State): State {
  return {
    ...s,
    wish: { ...s.wish },
    slots: s.slots.map((slot) => ({ ...slot })),
    members: new Map([...s.members].map(([id, m]) => [id, { ...m }])),
    reload: s.reload && { ...s.reload, waiters: [...s.reload.waiters], previous: { ...s.reload.previous } },
    readyGenerations: [...s.readyGenerations],
    crashes: [...s.crashes],
    stop: s.stop && { ...s.stop },
    lastReload: s.lastReload && { ...s.lastReload },
    totals: { exits: { ...s.totals.exits }, reloads: { ...s.totals.reloads }, crashes: s.totals.crashes },
  }
}
