// The arbiter. It keeps a wish (N slots, each wanting a ready worker of the current
// generation) and the facts (which workers exist, in which phase), and one function,
// manage(), takes the next steps from the difference. Every trigger (a crash, a
// reload, a scale, a recycle) only changes the wish or records a fact, then asks for
// a pass. Reload, scale and recycle thus share one path: start a replacement, wait
// until it is ready, drain the old one.
import cluster, { type Worker } from 'node:cluster'
import { EventEmitter } from 'node:events'
import path from 'node:path'
import type { Config } from '../config/schema.js'
import { ConfigError, ClusterError } from '../errors.js'
import { EVENTS, type EventName, type Logger } from '../log.js'
import { ENV, isProtocolMessage, type HeartbeatStats, type ToPrimary, type ToWorker } from '../protocol.js'
import { nextAttempt, restartDelay } from './backoff.js'
import { CrashWindow, breakerCanTrip } from './crash-window.js'
import { classifyExit, type Leaving } from './exit-reason.js'
import { findHung } from './heartbeat-check.js'
import { rescueHandoffs } from './handoff-rescue.js'

export type WorkerPhase = 'starting' | 'ready' | 'draining'

/** How a reload() call ended: replaced every worker, rolled back, queued or ignored behind a running one, or cut short by a shutdown. */
export type ReloadOutcome = 'complete' | 'aborted' | 'queued' | 'ignored' | 'stopped'

/** A worker as the run() handle shows it. */
export interface WorkerInfo {
  id: number
  pid: number
  state: WorkerPhase
  generation: number
  startedAt: number
  /** the latest heartbeat's figures, once one arrived */
  stats?: HeartbeatStats
}

interface Member {
  worker: Worker
  pid: number
  slot: Slot
  generation: number
  phase: WorkerPhase
  forkedAt: number
  readyAt?: number
  leaving?: Leaving
  killedAtDeadline: boolean
  lastBeatAt: number
  stats?: HeartbeatStats
  requestLimit: number
  /** why it should be replaced (recycling); the replacement path picks it up */
  stale?: 'memory' | 'max-requests'
  timers: NodeJS.Timeout[]
  stderrTail: string
}

interface ReloadState {
  startedAt: number
  queued: boolean
  /** false while the config is being read; true once workers are being replaced */
  replacing: boolean
  /** what an aborted reload goes back to */
  previous: { config: Config, generation: number }
  /** a scale asked for while the config was being read: applied on top of it */
  scaleTo?: number
}

interface Slot {
  id: number
  current?: Member
  successor?: Member
  attempt: number
  restartTimer?: NodeJS.Timeout
}

export interface SupervisorOptions {
  config: Config
  log: Logger
  /** re-reads the configuration for a reload; throws ConfigError when invalid */
  reloadConfig?: () => Promise<Config>
  random?: () => number
}

type HookName = 'onWorkerFork' | 'onWorkerReady' | 'onWorkerExit' | 'onReload' | 'onShutdown'

const MiB = 1024 * 1024
const STDERR_TAIL_BYTES = 4096
const TS_ENTRY = /\.[mc]?ts$/

let frozenPolicy: Config['schedulingPolicy'] | undefined

export class Supervisor extends EventEmitter {
  #config: Config
  readonly #log: Logger
  readonly #reloadConfig?: () => Promise<Config>
  readonly #random: () => number
  readonly #slots: Slot[] = []
  readonly #members = new Set<Member>()
  #crashes: CrashWindow
  #generation = 0
  readonly #readyGenerations = new Set<number>()
  #reload?: ReloadState
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle'
  #stop = { signal: '', startedAt: 0, exitCode: 0, killed: 0 }
  #lastExits: Array<{ workerId: number, code: number | null, signal: string | null, reason: string }> = []
  #heartbeatTimer?: NodeJS.Timeout
  readonly #started = deferred<void>()
  readonly #exited = deferred<number>()

  constructor (options: SupervisorOptions) {
    super()
    this.#config = options.config
    this.#log = options.log
    this.#reloadConfig = options.reloadConfig
    this.#random = options.random ?? Math.random
    this.#crashes = new CrashWindow(this.#config.maxCrashRate)
    this.#started.promise.catch(() => {}) // observed through start(); never unhandled
  }

  /** Resolves with the exit code once the cluster has stopped. */
  get exited (): Promise<number> { return this.#exited.promise }

  get config (): Config { return this.#config }

  /** Forks the workers; resolves once every one is ready, rejects if the cluster stops first. */
  start (): Promise<void> {
    const config = this.#config
    const policy = config.schedulingPolicy
    if (frozenPolicy && frozenPolicy !== policy) {
      return Promise.reject(new ClusterError(`schedulingPolicy is fixed at "${frozenPolicy}" for this process; cannot start another cluster with "${policy}"`, 1))
    }
    if (!frozenPolicy) {
      // Node reads the policy once, at the first setupPrimary(); it must be set before.
      cluster.schedulingPolicy = policy === 'rr' ? cluster.SCHED_RR : cluster.SCHED_NONE
      frozenPolicy = policy
    }
    this.#event('primary.start', {
      workers: config.workers,
      workersReason: config.workersReason,
      schedulingPolicy: policy,
      app: config.app,
      configFile: config.configFile ?? null,
      node: process.version,
    })
    this.#warnAboutConfig(config)
    this.#state = 'running'
    if (config.heartbeatTimeoutMs > 0) this.#startHeartbeatCheck(config.heartbeatTimeoutMs)
    this.#manage()
    return this.#started.promise
  }

  // ── the reconcile pass ───────────────────────────────────────────────────────

  #manage (): void {
    if (this.#state !== 'running') return
    const desired = this.#config.workers

    // Scale down: drain slots beyond the wish, highest first; forget emptied ones.
    for (let id = this.#slots.length - 1; id >= desired; id--) {
      const slot = this.#slots[id]
      clearTimeout(slot.restartTimer)
      slot.restartTimer = undefined
      if (slot.successor) this.#drain(slot.successor, 'drained')
      if (slot.current) this.#drain(slot.current, 'drained')
    }
    this.#slots.length = Math.min(this.#slots.length, desired)

    // Fill: every slot without a worker and without a pending restart gets one.
    for (let id = 0; id < desired; id++) {
      const slot = this.#slots[id] ??= { id, attempt: 0 }
      if (!slot.current && !slot.successor && !slot.restartTimer) slot.current = this.#fork(slot)
    }

    // Replace: one slot at a time, so the number of ready workers never drops.
    if (!this.#slots.some((s) => s.successor)) {
      const outdated = this.#slots.find(({ current: m, restartTimer }) => m && m.phase === 'ready' && !restartTimer &&
        (m.stale || (this.#reload && m.generation < this.#generation)))
      if (outdated) outdated.successor = this.#fork(outdated)
    }

    const allReady = this.#slots.every((s) => s.current?.phase === 'ready' && !s.successor)
    if (!allReady) return
    this.#started.resolve()
    if (this.#reload?.replacing && this.#slots.every((s) => s.current!.generation === this.#generation)) {
      this.#endReload('reload.complete', { generation: this.#generation, durationMs: Date.now() - this.#reload.startedAt })
    }
  }

  // ── one worker's life: fork, ready, drain, exit ──────────────────────────────

  #fork (slot: Slot): Member {
    const config = this.#config
    cluster.setupPrimary({
      exec: config.app,
      args: config.args,
      cwd: config.cwd,
      execArgv: [...process.execArgv, ...loaderFlags(config.app), ...config.execArgv],
      // stdout goes straight through; stderr is piped so a boot failure can show its tail.
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    })
    // Beats carry the figures that memory and request recycling read, so workers beat
    // even when the hang check is off; a tight timeout asks for more frequent beats.
    const heartbeatMs = config.heartbeatTimeoutMs > 0 ? Math.max(100, Math.min(1000, Math.floor(config.heartbeatTimeoutMs / 4))) : 1000
    const requestLimit = config.maxRequests > 0
      ? config.maxRequests + Math.floor(this.#random() * (config.maxRequestsJitter + 1))
      : Infinity
    const worker = cluster.fork({
      ...config.env,
      [ENV.workerId]: String(slot.id),
      [ENV.heartbeatMs]: String(heartbeatMs),
      [ENV.requestLimit]: Number.isFinite(requestLimit) ? String(requestLimit) : '0',
    })
    if (config.schedulingPolicy === 'rr') rescueHandoffs(worker)
    const now = Date.now()
    const member: Member = {
      worker,
      pid: worker.process.pid ?? -1,
      slot,
      generation: this.#generation,
      phase: 'starting',
      forkedAt: now,
      killedAtDeadline: false,
      lastBeatAt: now,
      requestLimit,
      timers: [],
      stderrTail: '',
    }
    this.#members.add(member)
    const workerId = slot.id

    worker.process.stderr?.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk)
      member.stderrTail = (member.stderrTail + chunk.toString()).slice(-STDERR_TAIL_BYTES)
    })
    worker.on('listening', (address) => {
      this.#event('worker.listening', { workerId, pid: member.pid, address: formatAddress(address) })
      if (this.#config.readiness === 'listening') this.#ready(member)
    })
    worker.on('message', (message: unknown) => {
      if (isProtocolMessage<ToPrimary>(message)) this.#onMessage(member, message)
    })
    worker.on('error', () => {}) // IPC errors to a dying worker; its 'exit' follows
    worker.on('exit', (code, signal) => this.#onExit(member, code, signal))
    member.timers.push(setTimeout(() => {
      if (member.phase !== 'starting') return
      member.leaving = 'not-ready'
      member.worker.process.kill('SIGKILL')
    }, config.readyTimeoutMs))

    this.#event('worker.fork', { workerId, pid: member.pid, generation: member.generation })
    this.#hook('onWorkerFork', { workerId, pid: member.pid })
    return member
  }

  #onMessage (member: Member, message: ToPrimary): void {
    switch (message.clusterRun) {
      case 'ready':
        if (this.#config.readiness === 'message') this.#ready(member)
        break
      case 'draining':
        // The worker was told to stop by a signal of its own: it is leaving, so its
        // slot takes a new worker without waiting for its exit. Not at once: a Ctrl-C
        // signals the primary too, whose shutdown must not find a new set of workers.
        this.#drain(member, 'drained')
        setTimeout(() => this.#manage(), 100).unref()
        break
      case 'heartbeat': {
        const { clusterRun: _, ...stats } = message
        member.stats = stats
        member.lastBeatAt = Date.now()
        this.#checkRecycle(member)
        break
      }
    }
  }

  #ready (member: Member): void {
    if (member.phase !== 'starting' || !this.#members.has(member)) return
    member.phase = 'ready'
    member.readyAt = Date.now()
    this.#readyGenerations.add(member.generation)
    const { slot } = member
    this.#event('worker.ready', { workerId: slot.id, pid: member.pid, generation: member.generation, startMs: member.readyAt - member.forkedAt })
    this.#hook('onWorkerReady', { workerId: slot.id, pid: member.pid })
    if (slot.successor === member) {
      const old = slot.current
      slot.current = member
      slot.successor = undefined
      if (old) this.#drain(old, old.stale ? 'recycled' : 'drained')
    }
    this.#manage()
  }

  /** Takes a worker out of service: it leaves its slot, drains, and is killed at the deadline. */
  #drain (member: Member, why: Leaving): void {
    if (member.phase === 'draining' || !this.#members.has(member)) return
    const { slot } = member
    if (slot.current === member) slot.current = undefined
    if (slot.successor === member) slot.successor = undefined
    const wasStarting = member.phase === 'starting'
    member.phase = 'draining'
    member.leaving ??= why
    this.#event('worker.drain', { workerId: slot.id, pid: member.pid, reason: member.leaving, inflight: member.stats?.inflight ?? null })
    if (wasStarting) {
      // It serves nothing yet: a worker still booting may not even listen for messages.
      member.worker.process.kill('SIGTERM')
    } else if (member.worker.isConnected()) {
      // The drain message first, so the worker closes its servers itself (keeping
      // idle keep-alive sockets for a grace); then disconnect(), which takes it out
      // of the primary's round-robin at once.
      member.worker.send({ clusterRun: 'drain' } satisfies ToWorker)
      member.worker.disconnect()
    }
    const startedAt = Date.now()
    member.timers.push(setTimeout(() => {
      member.killedAtDeadline = true
      this.#event('worker.killed', { workerId: slot.id, pid: member.pid, afterMs: Date.now() - startedAt })
      member.worker.process.kill('SIGKILL')
    }, this.#config.shutdownTimeoutMs))
  }

  #onExit (member: Member, code: number | null, signal: string | null): void {
    for (const timer of member.timers) clearTimeout(timer)
    this.#members.delete(member)
    const { slot } = member
    const wasSuccessor = slot.successor === member
    if (slot.current === member) slot.current = undefined
    if (wasSuccessor) slot.successor = undefined
    const verdict = classifyExit({ leaving: member.leaving, killedAtDeadline: member.killedAtDeadline, code, signal })
    const uptimeMs = Date.now() - member.forkedAt
    if (verdict.reason === 'drain-timeout' && this.#state === 'stopping') this.#stop.killed++
    this.#lastExits = [...this.#lastExits.slice(-4), { workerId: slot.id, code, signal, reason: verdict.reason }]
    this.#event('worker.exit', {
      workerId: slot.id,
      pid: member.pid,
      code,
      signal,
      uptimeMs,
      expected: verdict.expected,
      reason: verdict.reason,
      ...(verdict.possibleOom ? { possibleOom: true } : {}),
    })
    this.#hook('onWorkerExit', { workerId: slot.id, pid: member.pid, code, signal, reason: verdict.reason })

    if (this.#state === 'stopping') return this.#finishStopWhenEmpty()
    if (this.#state !== 'running') return
    if (!verdict.crash) return this.#manage()

    if (this.#reload?.replacing && member.generation === this.#generation && !member.readyAt) {
      // A worker of the new generation that cannot start (a replacement, or one for a
      // slot the new config added) is the new code's fault, not the old workers': the
      // reload stops and rolls back, they keep serving, nothing is counted.
      this.#abortReload(`worker ${slot.id} (pid ${member.pid}) ${verdict.reason} before it was ready (code ${code}, signal ${signal})`, member)
      return this.#manage()
    }
    if (code !== null && this.#config.stopOnExitCodes.includes(code)) {
      return this.#fail('stop-code', member)
    }
    if (this.#crashes.record()) return this.#fail('crash-rate', member)

    const backoff = this.#config.restartBackoff
    slot.attempt = nextAttempt(backoff, slot.attempt, member.readyAt ? Date.now() - member.readyAt : 0)
    const delayMs = restartDelay(backoff, slot.attempt, this.#random)
    this.#event('worker.restart', { workerId: slot.id, delayMs, attempt: slot.attempt })
    // The timer also holds back a failed replacement of a still-serving worker
    // (a recycle): manage() starts neither a worker nor a replacement before it fires.
    if (!slot.successor) {
      clearTimeout(slot.restartTimer)
      slot.restartTimer = setTimeout(() => {
        slot.restartTimer = undefined
        this.#manage()
      }, delayMs)
    }
    this.#manage()
  }

  // ── failing, stopping ────────────────────────────────────────────────────────

  /** The cluster cannot go on: stop everything and exit non-zero so a service manager takes over. */
  #fail (cause: 'crash-rate' | 'stop-code', member: Member): void {
    const bootFailure = cause === 'stop-code' || !this.#readyGenerations.has(this.#generation)
    const facts = {
      crashes: this.#crashes.count(),
      windowMs: this.#config.maxCrashRate.windowMs,
      lastExits: this.#lastExits,
    }
    if (bootFailure) {
      this.#event('boot.failed', {
        ...facts,
        cause,
        message: 'the app fails at boot: no worker of this generation ever became ready',
        stderr: member.stderrTail.trimEnd().split('\n').slice(-20),
      })
    } else {
      this.#event('crash-rate.exceeded', facts)
    }
    void this.stop(cause, bootFailure ? 3 : 1)
  }

  /**
   * Stops restarting and drains every worker. A second call while stopping kills
   * what remains at once (a second Ctrl-C). Resolves with the exit code.
   */
  stop (signal = 'stop', exitCode = 0): Promise<number> {
    if (this.#state === 'stopping') {
      if (signal === 'SIGINT' || signal === 'SIGTERM') this.#killAll(signal)
      return this.exited
    }
    if (this.#state !== 'running') {
      if (this.#state === 'idle') {
        this.#stop = { signal, startedAt: Date.now(), exitCode, killed: 0 }
        this.#finishStop()
      }
      return this.exited
    }
    this.#state = 'stopping'
    this.#stop = { signal, startedAt: Date.now(), exitCode, killed: 0 }
    clearInterval(this.#heartbeatTimer)
    for (const slot of this.#slots) clearTimeout(slot.restartTimer)
    this.#event('shutdown.start', { signal, workers: this.#members.size })
    this.#hook('onShutdown', { signal })
    for (const member of this.#members) this.#drain(member, 'drained')
    this.#finishStopWhenEmpty()
    return this.exited
  }

  #killAll (signal: string): void {
    this.#event('shutdown.start', { signal, workers: this.#members.size, fast: true })
    for (const member of this.#members) {
      member.killedAtDeadline = true
      member.worker.process.kill('SIGKILL')
    }
  }

  #finishStopWhenEmpty (): void {
    if (this.#members.size === 0) this.#finishStop()
  }

  #finishStop (): void {
    this.#state = 'stopped'
    const { signal, startedAt, exitCode, killed } = this.#stop
    const code = exitCode || (killed > 0 ? 1 : 0)
    this.#event('shutdown.complete', { signal, durationMs: startedAt ? Date.now() - startedAt : 0, exitCode: code, killed })
    this.#started.reject(new ClusterError(`the cluster stopped before every worker was ready (${signal})`, code))
    this.#exited.resolve(code)
  }

  // ── reload, scale, recycle, hang ─────────────────────────────────────────────

  /**
   * Replaces every worker, one slot at a time, after re-reading the config. Never
   * overlaps: a reload asked for during one is queued once. Resolves with how it ended.
   */
  async reload (): Promise<ReloadOutcome> {
    if (this.#state !== 'running') return 'stopped'
    if (this.#reload) {
      if (this.#reload.queued) {
        this.#event('reload.ignored', { reason: 'a reload is running and another is queued' })
        return 'ignored'
      }
      this.#reload.queued = true
      this.#event('reload.queued', {})
      return 'queued'
    }
    // Set before the config is read, so that a SIGHUP meanwhile is queued.
    const reload: ReloadState = {
      startedAt: Date.now(),
      queued: false,
      replacing: false,
      previous: { config: this.#config, generation: this.#generation },
    }
    this.#reload = reload
    const outcome = this.#reloadOutcome()
    if (this.#reloadConfig) {
      let next: Config
      try {
        next = await this.#reloadConfig()
      } catch (err) {
        const issues = err instanceof ConfigError ? err.issues : []
        this.#endReload('reload.aborted', { reason: 'invalid configuration', error: (err as Error).message, issues })
        return outcome
      }
      if (this.#state !== 'running' || this.#reload !== reload) return outcome
      this.#applyConfig(next)
      if (reload.scaleTo !== undefined) this.#config = Object.freeze({ ...this.#config, workers: reload.scaleTo })
    }
    this.#generation++
    reload.replacing = true
    this.#event('reload.start', { generation: this.#generation, workers: this.#config.workers })
    this.#hook('onReload', { generation: this.#generation })
    this.#manage()
    return outcome
  }

  #reloadOutcome (): Promise<ReloadOutcome> {
    return new Promise((resolve) => {
      const events = { 'reload.complete': 'complete', 'reload.aborted': 'aborted', 'shutdown.start': 'stopped' } as const
      const listeners = Object.entries(events).map(([event, outcome]) => {
        const listener = (): void => {
          for (const [e, l] of listeners) this.off(e, l)
          resolve(outcome)
        }
        this.once(event, listener)
        return [event, listener] as const
      })
    })
  }

  /** Ends the current reload with `event`; a queued one starts next. */
  #endReload (event: 'reload.complete' | 'reload.aborted', fields: Record<string, unknown>): void {
    const queued = this.#reload?.queued
    this.#reload = undefined
    this.#event(event, fields)
    if (queued) void this.reload()
  }

  #abortReload (reason: string, member: Member): void {
    // Back to the config and generation that ran before: workers forked from here on
    // (crash restarts, slots) are the old ones, not more of the failing new ones.
    const { previous } = this.#reload!
    this.#config = previous.config
    this.#crashes = new CrashWindow(previous.config.maxCrashRate)
    this.#generation = previous.generation
    this.#endReload('reload.aborted', { reason, stderr: member.stderrTail.trimEnd().split('\n').slice(-20) })
  }

  #applyConfig (next: Config): void {
    if (next.schedulingPolicy !== this.#config.schedulingPolicy) {
      this.#event('config.warning', { key: 'schedulingPolicy', message: 'the scheduling policy cannot change without a restart of the primary; keeping the current one' })
      next = { ...next, schedulingPolicy: this.#config.schedulingPolicy }
    }
    if (next.workers !== this.#config.workers) this.#event('scale', { from: this.#config.workers, to: next.workers })
    this.#config = Object.freeze(next)
    this.#crashes = new CrashWindow(next.maxCrashRate)
    this.#warnAboutConfig(next)
  }

  /** Sets the number of workers (at least 1): new slots are forked, the highest ones drained. */
  scale (workers: number): void {
    const to = Math.max(1, Math.floor(workers))
    if (this.#state !== 'running' || to === this.#config.workers) return
    if (this.#reload && !this.#reload.replacing) this.#reload.scaleTo = to
    this.#event('scale', { from: this.#config.workers, to })
    this.#config = Object.freeze({ ...this.#config, workers: to })
    this.#manage()
  }

  #checkRecycle (member: Member): void {
    if (member.phase !== 'ready' || member.stale || !member.stats) return
    const { maxMemoryMb } = this.#config
    const rssMb = Math.round(member.stats.rssBytes / MiB)
    if (maxMemoryMb > 0 && rssMb > maxMemoryMb) {
      member.stale = 'memory'
      this.#event('worker.recycle', { workerId: member.slot.id, pid: member.pid, reason: 'memory', rssMb, maxMemoryMb })
    } else if (member.stats.requests >= member.requestLimit) {
      member.stale = 'max-requests'
      this.#event('worker.recycle', { workerId: member.slot.id, pid: member.pid, reason: 'max-requests', requests: member.stats.requests, limit: member.requestLimit })
    } else {
      return
    }
    this.#manage()
  }

  #startHeartbeatCheck (timeoutMs: number): void {
    const everyMs = Math.max(50, Math.min(1000, Math.floor(timeoutMs / 4)))
    let previous = Date.now()
    this.#heartbeatTimer = setInterval(() => {
      const now = Date.now()
      const ready = [...this.#members].filter((m) => m.phase === 'ready')
      const { hung, primaryStalled } = findHung(ready, now, previous, everyMs, timeoutMs)
      previous = now
      if (primaryStalled) for (const m of ready) m.lastBeatAt = now
      for (const member of hung) {
        this.#event('worker.hung', { workerId: member.slot.id, pid: member.pid, heartbeatAgeMs: now - member.lastBeatAt, timeoutMs })
        member.leaving = 'hung'
        member.worker.process.kill('SIGKILL')
      }
    }, everyMs)
    this.#heartbeatTimer.unref()
  }

  // ── what the handle shows ────────────────────────────────────────────────────

  workers (): WorkerInfo[] {
    return [...this.#members]
      .map((m) => ({ id: m.slot.id, pid: m.pid, state: m.phase, generation: m.generation, startedAt: m.forkedAt, stats: m.stats }))
      .sort((a, b) => a.id - b.id || a.startedAt - b.startedAt)
  }

  // ── events and hooks ─────────────────────────────────────────────────────────

  #event (event: EventName, fields: Record<string, unknown>): void {
    this.#log[EVENTS[event]]({ event, ...fields })
    this.emit(event, fields)
    this.emit('event', { event, ...fields })
  }

  #hook<K extends HookName> (name: K, facts: Parameters<NonNullable<Config[K]>>[0]): void {
    const hook = this.#config[name] as ((facts: unknown) => unknown) | undefined
    if (!hook) return
    // A hook is the user's code: whatever it does, the primary goes on.
    const report = (err: unknown): void => this.#event('hook.error', { hook: name, error: err instanceof Error ? err.message : String(err) })
    try {
      const result = hook(facts)
      if (result instanceof Promise) result.catch(report)
    } catch (err) {
      report(err)
    }
  }

  #warnAboutConfig (config: Config): void {
    if (!breakerCanTrip(config.maxCrashRate, config.restartBackoff)) {
      this.#event('config.warning', {
        key: 'maxCrashRate',
        message: 'with this restartBackoff, a crash loop can never exceed maxCrashRate: the cluster would restart forever',
        crashes: config.maxCrashRate.crashes,
        windowMs: config.maxCrashRate.windowMs,
        maxMs: config.restartBackoff.maxMs,
      })
    }
  }
}

/** The worker's --import flags: TypeScript support for TS entries, then cluster-run's preload. */
function loaderFlags (app: string): string[] {
  const flags: string[] = []
  // tsx resolved from cluster-run itself: the app's folder may not have it.
  if (TS_ENTRY.test(app)) flags.push('--import', import.meta.resolve('tsx'))
  flags.push('--import', preloadUrl())
  return flags
}

function preloadUrl (): string {
  // The same extension as this file: .js when built, .ts when run from source.
  const ext = path.extname(new URL(import.meta.url).pathname)
  return new URL(`../worker/preload${ext}`, import.meta.url).href
}

function formatAddress (address: { address: string | null, port: number, addressType: number | string }): string {
  const host = address.address ?? (address.addressType === 6 ? '::' : '0.0.0.0')
  return address.addressType === -1 || address.addressType === 'udp4' ? `${host}` : `${host.includes(':') ? `[${host}]` : host}:${address.port}`
}

/** Promise.withResolvers, which Node 20 lacks. */
function deferred<T> (): { promise: Promise<T>, resolve: (value: T) => void, reject: (reason: unknown) => void } {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}
