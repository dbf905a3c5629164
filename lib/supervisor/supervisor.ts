// The arbiter's applier. Every trigger (a signal, an IPC message, a timer, a call
// on the run() handle, a control command) becomes an input in one queue. A pass
// takes what is queued and reads top to bottom:
//
//   record the facts and plan   decide() in plan.ts: pure, tested without processes
//   apply the steps             fork, drain, kill, timers, config reads, replies
//   emit                        the pass's events and hooks, once the state is whole
//
// A listener or hook that calls back into the handle only queues an input: it is
// handled by the next pass, never inside the current one.
import cluster, { type Worker } from 'node:cluster'
import type { Config } from '../config/schema.js'
import { ConfigError, ClusterError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { hookOf, levelOf, type AnyEvent, type Emit, type EventFields } from './events.js'
import type { HookFacts, HookName, ReloadOutcome } from '../common/lifecycle.js'
import { dispatch, isProtocolMessage, type Handlers, type ToPrimary, type ToWorker } from '../protocol/messages.js'
import { launchOptions } from '../protocol/launch.js'
import { heartbeatEvery } from './heartbeat-check.js'
import { rescueHandoffs } from './handoff-rescue.js'
import { whenGone } from './worker-gone.js'
import { buildStatus, type ClusterStatus, type LogStatus } from './status.js'
import { openStickyListener, type StickyListener } from '../balancer/listener.js'
import { SlotSockets } from '../balancer/reuseport.js'
import { tcpMigrateReq } from '../common/reuseport.js'
import { hostPort } from '../common/address.js'
import { decide, initialState, type Input, type Policy, type State, type Step, type Totals, type Warning } from './plan.js'

export type { ReloadOutcome }

/** The workers' output, as the supervisor needs it: their stdio, and each one's reading. */
export interface WorkerOutputs {
  stdio: ['ignore', 'pipe' | 'inherit', 'pipe', 'ipc']
  attach: (worker: Worker, source: { workerId: number, pid: number, generation: number }) => { stderrTail: () => string[] }
  /** lines and bytes a worker process has written, when its output is captured */
  countsOf: (pid: number) => { lines: number, bytes: number } | undefined
  log: () => LogStatus
}

export interface SupervisorOptions {
  config: Config
  log: Logger
  /** re-reads the configuration for a reload; throws ConfigError when invalid */
  reloadConfig?: () => Promise<Config>
  /** runs once the cluster has stopped, before `exited` resolves (closing the control socket) */
  onStopped?: (exitCode: number) => Promise<void> | void
  /** how the workers' stdout and stderr are set up and read (logs/capture.ts) */
  outputs: WorkerOutputs
  /** told of every event, once logged (the run() handle re-emits them) */
  onEvent?: (event: AnyEvent) => void
  random?: () => number
  /** an upgrade's new primary: the old one's totals (exits, reloads, crashes), counted on from */
  totals?: Totals
}

/** What the applier holds of a worker process (the plan keeps its facts as a member, by the same id). */
interface WorkerProcess {
  worker: Worker
  pid: number
  /** the last lines it wrote to stderr */
  stderrTail: () => string[]
  /** sticky: the addresses it listens on, whose connections it may be handed */
  sticky: Set<string>
}

let frozenPolicy: Config['schedulingPolicy'] | undefined

export class Supervisor {
  #state: State
  /** the config of each generation still in use; the wish's generation is the current one */
  readonly #configs = new Map<number, Config>()
  #readConfig?: Config
  readonly #log: Logger
  readonly #reloadConfig?: () => Promise<Config>
  readonly #onStopped?: (exitCode: number) => Promise<void> | void
  readonly #onEvent?: (event: AnyEvent) => void
  readonly #outputs: WorkerOutputs
  readonly #random: () => number
  readonly #processes = new Map<number, WorkerProcess>()
  readonly #timers = new Map<string, NodeJS.Timeout>()
  readonly #replies = new Map<number, (outcome: ReloadOutcome) => void>()
  readonly #metricsReplies = new Map<number, (metrics: unknown[]) => void>()
  #nextTicket = 0
  readonly #inbox: Input[] = []
  #passing = false
  #checkTimer?: NodeJS.Timeout
  /** sticky: the primary's own listeners, one per address the app listens on */
  readonly #sticky = new Map<string, Promise<StickyListener>>()
  /** reuseport: each slot's listening sockets, which outlive the slot's workers */
  readonly #slotSockets = new SlotSockets()
  /**
   * reuseport: the kernel moves a closing socket's queue to the others of its port
   * (net.ipv4.tcp_migrate_req), so a scale-down closes the removed slots' sockets;
   * without it they stay open, served by the remaining workers, and nothing is reset.
   */
  #migrates = false
  readonly #started = deferred<void>()
  readonly #exited = deferred<number>()

  constructor (options: SupervisorOptions) {
    this.#configs.set(0, options.config)
    this.#state = initialState(options.config.workers, policyOf(options.config), options.totals)
    this.#log = options.log
    this.#reloadConfig = options.reloadConfig
    this.#onStopped = options.onStopped
    this.#onEvent = options.onEvent
    this.#outputs = options.outputs
    this.#random = options.random ?? Math.random
    this.#started.promise.catch(() => {}) // observed through start(); never unhandled
  }

  /** Resolves with the exit code once the cluster has stopped. */
  get exited (): Promise<number> { return this.#exited.promise }

  /** The config the cluster runs, as resolved from its sources. */
  get config (): Config { return this.#configs.get(this.#state.wish.generation)! }

  /** The running totals (exits by reason, reloads, crashes), for an upgrade to carry over. */
  get totals (): Totals { return this.#state.totals }

  /** The number of workers wanted now (the config's, or what a scale set). */
  get desiredWorkers (): number { return this.#state.wish.workers }

  // ── the handle's commands: each only queues an input ─────────────────────────

  /** Forks the workers; resolves once every one is ready, rejects if the cluster stops first. */
  start (servers: { metrics: string | null, dashboard?: EventFields['primary.start']['dashboard'], upgradedFrom?: number } = { metrics: null }): Promise<void> {
    const config = this.config
    const policy = config.schedulingPolicy
    if (frozenPolicy && frozenPolicy !== policy) {
      return Promise.reject(new ClusterError(`schedulingPolicy is fixed at "${frozenPolicy}" for this process; cannot start another cluster with "${policy}"`, 1))
    }
    if (!frozenPolicy) {
      // Node reads the policy once, at the first setupPrimary(); it must be set before.
      // (Sticky workers listen privately: Node's distribution is not used. Reuseport
      // serves the app's TCP ports; a pipe or port 0 is round-robin.)
      cluster.schedulingPolicy = policy === 'none' || policy === 'sticky' ? cluster.SCHED_NONE : cluster.SCHED_RR
      frozenPolicy = policy
    }
    // Once, before any fork: what the primary must set up for its workers (an adapter's relay).
    if (this.#state.lifecycle === 'idle') this.#hook('onPrimaryStart', {})
    this.#submit({
      type: 'start',
      announce: {
        workers: config.workers,
        workersReason: config.workersReason,
        schedulingPolicy: policy,
        app: config.app,
        appSource: config.appSource,
        configFile: config.configFile ?? null,
        pid: process.pid,
        node: process.version,
        name: config.name,
        controlSocket: config.controlSocket,
        ...servers,
        ...policy === 'reuseport' ? { tcpMigrateReq: this.#migrates = tcpMigrateReq() === true } : {},
      },
      warnings: config.warnings,
    })
    if (config.heartbeatTimeoutMs > 0 && this.#state.lifecycle === 'running') {
      this.#checkTimer = setInterval(() => this.#submit({ type: 'check' }), heartbeatEvery(config.heartbeatTimeoutMs))
      this.#checkTimer.unref()
    }
    return this.#started.promise
  }

  /**
   * Replaces every worker after re-reading the config: the new ones start beside the
   * old ones, which drain together once all new ones are ready. Never
   * overlaps: a reload asked for during one is queued once. Resolves with how it ended.
   */
  reload (): Promise<ReloadOutcome> {
    const ticket = ++this.#nextTicket
    const outcome = new Promise<ReloadOutcome>((resolve) => this.#replies.set(ticket, resolve))
    this.#submit({ type: 'reload', ticket })
    return outcome
  }

  /** Sets the number of workers (at least 1): new slots are forked, the highest ones drained. */
  scale (workers: number): void {
    this.#submit({ type: 'scale', workers })
  }

  /**
   * Replaces the worker serving slot `workerId` as a recycle does: its successor starts,
   * then it drains. False when the slot has no ready worker.
   */
  recycle (workerId: number): boolean {
    const serving = [...this.#state.members.values()].some((m) => m.slot === workerId && m.phase === 'ready')
    if (!serving || this.#state.lifecycle !== 'running') return false
    this.#submit({ type: 'recycle', workerId })
    return true
  }

  /** Adds (or with a negative delta, removes) workers. */
  scaleBy (delta: number): void {
    this.#submit({ type: 'scale', delta })
  }

  /**
   * Stops restarting and drains every worker. A second SIGINT or SIGTERM while
   * stopping kills what remains at once (a second Ctrl-C). Resolves with the exit code.
   */
  stop (signal = 'stop', exitCode = 0): Promise<number> {
    this.#submit({ type: 'stop', signal, exitCode })
    return this.exited
  }

  /** The cluster as `cluster-run status` shows it: from what the primary holds, at once. */
  status (): ClusterStatus {
    return buildStatus(this.#state, this.config, {
      pidOf: (member) => this.#processes.get(member)?.pid ?? -1,
      outputOf: (pid) => this.#outputs.countsOf(pid),
      log: () => this.#outputs.log(),
    }, Date.now())
  }

  /**
   * Asks every ready worker for the metrics its app registered with exposeMetrics();
   * a worker that has not answered within `timeoutMs` is counted as missing.
   */
  async collectAppMetrics (timeoutMs: number): Promise<{ metrics: unknown[][], missing: number }> {
    const ready = [...this.#state.members.values()].filter((m) => m.phase === 'ready').map((m) => m.id)
    const answers = await Promise.all(ready.map((member) => new Promise<unknown[] | undefined>((resolve) => {
      const id = ++this.#nextTicket
      const done = (metrics: unknown[] | undefined): void => {
        clearTimeout(timer)
        this.#metricsReplies.delete(id)
        resolve(metrics)
      }
      const timer = setTimeout(() => done(undefined), timeoutMs)
      this.#metricsReplies.set(id, done)
      if (!this.#send(member, { clusterRun: 'metrics', id })) done(undefined)
    })))
    const metrics = answers.filter((a): a is unknown[] => a !== undefined)
    return { metrics, missing: answers.length - metrics.length }
  }

  #send (member: number, message: ToWorker, handle?: unknown): boolean {
    const worker = this.#processes.get(member)?.worker
    if (!worker?.isConnected()) return false
    try {
      worker.send(message, handle as never)
      return true
    } catch {
      return false
    }
  }

  // ── the pass ─────────────────────────────────────────────────────────────────

  #submit (input: Input): void {
    this.#inbox.push(input)
    if (this.#passing) return
    this.#passing = true
    try {
      while (this.#inbox.length) this.#pass(this.#inbox.splice(0))
    } finally {
      this.#passing = false
    }
  }

  #pass (inputs: Input[]): void {
    const { state, steps } = decide(this.#state, inputs, { now: Date.now(), random: this.#random })
    this.#state = state
    const events: Emit[] = []
    const gone: number[] = []
    for (const step of steps) {
      if (step.do === 'emit') events.push(step)
      else if (step.do === 'forget') gone.push(step.member)
      else this.#apply(step)
    }
    for (const event of events) this.#emit(event)
    for (const member of gone) this.#processes.delete(member)
    this.#forgetUnusedConfigs()
    this.#tendSlotSockets()
  }

  #apply (step: Exclude<Step, Emit | { do: 'forget' }>): void {
    switch (step.do) {
      case 'fork': return this.#fork(step)
      case 'drain': {
        // A shutdown's drain: no new connection is accepted for the workers any more.
        if (this.#state.lifecycle === 'stopping') this.#closeListeners()
        this.#slotSockets.left(step.member)
        const proc = this.#processes.get(step.member)
        if (!proc) return
        if (step.starting) {
          // It serves nothing yet: a worker still booting may not even listen for messages.
          proc.worker.process.kill('SIGTERM')
        } else {
          // The worker closes its servers itself (net.Server#close keeps idle keep-alive
          // sockets for a grace), which takes it out of the round-robin; the IPC channel
          // stays open until it exits, so it can still report what its deadline ended.
          this.#send(step.member, { clusterRun: 'drain', deadlineMs: this.config.shutdownTimeoutMs })
        }
        return
      }
      case 'kill':
        this.#processes.get(step.member)?.worker.process.kill('SIGKILL')
        return
      case 'unready':
        this.#send(step.member, { clusterRun: 'unready' })
        return
      case 'timer': {
        clearTimeout(this.#timers.get(step.key))
        const { key, input } = step
        this.#timers.set(key, setTimeout(() => {
          this.#timers.delete(key)
          this.#submit(input)
        }, step.ms))
        return
      }
      case 'cancel':
        clearTimeout(this.#timers.get(step.key))
        this.#timers.delete(step.key)
        return
      case 'read-config':
        void this.#read()
        return
      case 'adopt-config':
        this.#configs.set(step.generation, this.#readConfig!)
        this.#readConfig = undefined
        return
      case 'reply': {
        const resolve = this.#replies.get(step.ticket)
        this.#replies.delete(step.ticket)
        resolve?.(step.outcome)
        return
      }
      case 'started': return this.#started.resolve()
      case 'exit':
        this.#closeListeners()
        clearInterval(this.#checkTimer)
        for (const timer of this.#timers.values()) clearTimeout(timer)
        this.#timers.clear()
        this.#started.reject(new ClusterError(`the cluster stopped before every worker was ready (${step.signal})`, step.code))
        void Promise.resolve()
          .then(() => this.#onStopped?.(step.code))
          .catch(() => {})
          .then(() => this.#exited.resolve(step.code))
    }
  }

  // ── the steps that reach outside ─────────────────────────────────────────────

  #fork ({ member, slot, generation, requestLimit }: Extract<Step, { do: 'fork' }>): void {
    const config = this.#configs.get(generation)!
    const launch = launchOptions(config, {
      workerId: slot,
      heartbeatMs: heartbeatEvery(config.heartbeatTimeoutMs),
      requestLimit,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
      listens: config.schedulingPolicy === 'sticky' || config.schedulingPolicy === 'reuseport' ? config.schedulingPolicy : 'cluster',
      shutdownDelayMs: config.shutdownDelayMs,
      captured: this.#outputs.stdio[1] === 'pipe',
    })
    cluster.setupPrimary({
      exec: config.app,
      args: config.args,
      cwd: config.cwd,
      execArgv: launch.execArgv,
      stdio: this.#outputs.stdio,
    })
    const worker = cluster.fork(launch.env)
    const rescue = config.schedulingPolicy === 'rr' ? rescueHandoffs(worker) : undefined
    const pid = worker.process.pid ?? -1
    const { stderrTail } = this.#outputs.attach(worker, { workerId: slot, pid, generation })
    const proc: WorkerProcess = { worker, pid, stderrTail, sticky: new Set() }
    this.#processes.set(member, proc)
    worker.on('listening', (address) => this.#submit({ type: 'listening', member, address: formatAddress(address) }))
    // Each message of the worker becomes a fact for the plan, but a scrape's answer and
    // the sticky listen, which the applier serves itself.
    const fromWorker: Handlers<ToPrimary> = {
      ready: () => this.#submit({ type: 'ready', member }),
      draining: () => this.#submit({ type: 'draining', member }),
      heartbeat: ({ clusterRun: _, ...stats }) => this.#submit({ type: 'beat', member, stats }),
      'listen-failed': ({ clusterRun: _, ...failure }) => this.#submit({ type: 'listen-failed', member, ...failure }),
      exiting: ({ inflight, connections }) => this.#submit({ type: 'exiting', member, inflight, connections }),
      destroyed: ({ connections }) => this.#submit({ type: 'destroyed', member, connections }),
      metrics: ({ id, metrics }) => this.#metricsReplies.get(id)?.(metrics),
      'sticky-listen': (message) => { void this.#listenSticky(member, proc, message) },
      'reuseport-listen': (message) => { void this.#giveSlotSocket(member, message) },
      'reuseport-listening': ({ address }) => {
        const m = this.#state.members.get(member)
        // (one that drains meanwhile closes it at once)
        const standIn = m && m.phase !== 'draining' ? this.#slotSockets.serving(m.slot, member) : undefined
        if (standIn !== undefined) this.#send(standIn, { clusterRun: 'reuseport-release', slot: m!.slot })
        this.#submit({ type: 'listening', member, address })
      },
    }
    worker.on('message', (message: unknown) => {
      if (isProtocolMessage<ToPrimary>(message)) dispatch(fromWorker, message)
    })
    worker.on('error', () => {}) // IPC errors to a dying worker; its 'exit' follows
    // An exit counts once the worker is gone: its last messages (its counts at exit) are in.
    whenGone(worker, (code, signal) => {
      rescue?.()
      this.#slotSockets.left(member)
      this.#submit({ type: 'exit', member, code, signal })
    })
  }

  /** Sticky: accept on the address the worker's app listens on (once for all workers), then it is listening. */
  async #listenSticky (member: number, proc: WorkerProcess, { address, port, host, backlog }: Extract<ToPrimary, { clusterRun: 'sticky-listen' }>): Promise<void> {
    let listener = this.#sticky.get(address)
    if (!listener) {
      listener = openStickyListener(address, { port, host, backlog }, this.config.sticky.by, {
        slots: () => this.#state.wish.workers,
        workerFor: (slot, at) => {
          const id = this.#state.slots[slot]?.current
          const m = id === undefined ? undefined : this.#state.members.get(id)
          const candidate = m?.phase === 'ready' ? this.#processes.get(m.id) : undefined
          return candidate?.sticky.has(at) && candidate.worker.isConnected() ? candidate.worker : undefined
        },
      })
      this.#sticky.set(address, listener)
      listener.catch(() => this.#sticky.delete(address))
    }
    try {
      await listener
    } catch (err) {
      // As a listen() of the app's own would: its server emits the error.
      const { message, code } = err as NodeJS.ErrnoException
      this.#send(member, { clusterRun: 'sticky-listening', address, error: { message, code } })
      return
    }
    proc.sticky.add(address)
    this.#send(member, { clusterRun: 'sticky-listening', address })
    this.#submit({ type: 'listening', member, address: host === undefined ? `[::]:${port}` : formatAddress({ address: host, port, addressType: host.includes(':') ? 6 : 4 }) })
  }

  /**
   * Reuseport, after every pass (heartbeats and checks included): a ready worker of
   * another slot accepts on the sockets of a slot left without a worker, or whose worker
   * has stopped beating, until it has one that accepts again; the sockets of removed
   * slots and of abandoned addresses close (see SlotSockets.tend).
   */
  #tendSlotSockets (): void {
    const s = this.#state
    if (s.lifecycle !== 'running' || this.config.schedulingPolicy !== 'reuseport') return
    const ready = [...s.members.values()].filter((m) => m.phase === 'ready')
    const settled = !s.reload && s.slots.every((slot) => slot.successor === undefined && ready.some((m) => m.id === slot.current && m.generation === s.wish.generation))
    // three beats missed: its event loop is blocked (long before a hang-kill), and its queue fills
    const stallMs = 3 * heartbeatEvery(this.config.heartbeatTimeoutMs)
    const now = Date.now()
    const stalled = ready.filter((m) => now - m.lastBeatAt > stallMs).map((m) => m.id)
    const steps = this.#slotSockets.tend({ wanted: s.wish.workers, migrates: this.#migrates, ready: ready.map((m) => m.id), stalled, generation: s.wish.generation, settled })
    for (const step of steps) {
      if (step.do === 'release') this.#send(step.member, { clusterRun: 'reuseport-release', slot: step.slot })
      else void step.socket.then((handle) => this.#send(step.member, { clusterRun: 'reuseport-adopt', slot: step.slot, address: step.address }, handle), () => {})
    }
  }

  /** Reuseport: the worker's slot's socket for the address its app listens on (bound on the first ask). */
  async #giveSlotSocket (member: number, { id, address, port, host }: Extract<ToPrimary, { clusterRun: 'reuseport-listen' }>): Promise<void> {
    const m = this.#state.members.get(member)
    // one that drains meanwhile has no use for it (its listen never completes; it exits)
    if (!m || m.phase === 'draining') return
    const slot = m.slot
    try {
      const handle = await this.#slotSockets.socketFor(slot, m.generation, address, { port, host })
      this.#send(member, { clusterRun: 'reuseport-socket', id }, handle)
    } catch (err) {
      const { message, code } = err as NodeJS.ErrnoException
      this.#send(member, { clusterRun: 'reuseport-socket', id, error: { message, code } })
    }
  }

  async #read (): Promise<void> {
    let input: Input
    try {
      let next = this.#reloadConfig ? await this.#reloadConfig() : this.config
      const warnings: Warning[] = [...next.warnings ?? []]
      if (next.schedulingPolicy !== frozenPolicy && frozenPolicy) {
        warnings.push({ key: 'schedulingPolicy', message: `the scheduling policy cannot change by a reload; keeping "${frozenPolicy}" until \`cluster-run upgrade\` (or a restart)`, command: 'cluster-run upgrade' })
        next = { ...next, schedulingPolicy: frozenPolicy }
      }
      if (JSON.stringify(next.log) !== JSON.stringify(this.config.log)) {
        // the log's destinations and capture are set up once, at start
        warnings.push({ key: 'log', message: 'log settings are applied at start; keeping the current ones until `cluster-run upgrade` (or a restart)', command: 'cluster-run upgrade' })
        next = { ...next, log: this.config.log }
      }
      this.#readConfig = Object.freeze(next)
      input = { type: 'config', ok: true, workers: next.workers, policy: policyOf(next), warnings }
    } catch (err) {
      input = { type: 'config', ok: false, error: (err as Error).message, issues: err instanceof ConfigError ? err.issues : [] }
    }
    this.#submit(input)
  }

  /** The primary's copies of the app's sockets (sticky, reuseport): what is still queued goes to the workers' own copies, if any. */
  #closeListeners (): void {
    for (const listener of this.#sticky.values()) void listener.then((l) => l.close(), () => {})
    this.#sticky.clear()
    this.#slotSockets.closeAll()
  }

  #forgetUnusedConfigs (): void {
    const { wish, reload, members } = this.#state
    const used = new Set([wish.generation, reload?.previous.generation, ...[...members.values()].map((m) => m.generation)])
    for (const generation of this.#configs.keys()) if (!used.has(generation)) this.#configs.delete(generation)
  }

  // ── events and hooks ─────────────────────────────────────────────────────────

  #emit ({ event, fields: planned, member, stderrOf }: Emit): void {
    // what the planner leaves to the applier: the worker's pid (after its slot), the culprit's stderr tail
    let fields: Record<string, unknown> = planned
    if (member !== undefined) fields = { workerId: fields.workerId, pid: this.#processes.get(member)?.pid ?? -1, ...fields }
    if (stderrOf !== undefined) fields = { ...fields, stderr: this.#processes.get(stderrOf)?.stderrTail() ?? [] }
    this.#announce({ event, ...fields } as AnyEvent)
  }

  /** An event of the primary's that no pass makes (the log files reopened): logged and emitted like the others. */
  report (e: AnyEvent): void {
    this.#announce(e)
  }

  /** Logs the event, emits it on the handle, runs its hook. */
  #announce (e: AnyEvent): void {
    const { event, ...fields } = e
    this.#log[levelOf(event, fields as never)](e)
    this.#onEvent?.(e)
    const call = hookOf(event, fields as never)
    if (call) this.#hook(call[0], call[1])
  }

  #hook<H extends HookName> (name: H, facts: HookFacts[H]): void {
    const hook = this.config[name] as ((facts: HookFacts[H]) => unknown) | undefined
    if (!hook) return
    // A hook is the user's code: whatever it does, the primary goes on.
    const report = (err: unknown): void => this.#announce({ event: 'hook.error', hook: name, error: err instanceof Error ? err.message : String(err) })
    try {
      const result = hook(facts)
      if (result instanceof Promise) result.catch(report)
    } catch (err) {
      report(err)
    }
  }
}

function policyOf (config: Config): Policy {
  return {
    readiness: config.readiness,
    restartBackoff: config.restartBackoff,
    maxCrashRate: config.maxCrashRate,
    stopOnExitCodes: config.stopOnExitCodes,
    readyTimeoutMs: config.readyTimeoutMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
    maxMemoryMb: config.maxMemoryMb,
    maxRequests: config.maxRequests,
    maxRequestsJitter: config.maxRequestsJitter,
    shutdownDelayMs: config.shutdownDelayMs,
  }
}

function formatAddress (address: { address: string | null, port: number, addressType: number | string }): string {
  const host = address.address ?? (address.addressType === 6 ? '::' : '0.0.0.0')
  return address.addressType === -1 || address.addressType === 'udp4' ? `${host}` : hostPort(host, address.port)
}

/** Promise.withResolvers, which Node 20 lacks. */
function deferred<T> (): { promise: Promise<T>, resolve: (value: T) => void, reject: (reason: unknown) => void } {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
  return { promise, resolve, reject }
}
