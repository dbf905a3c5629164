// run(): resolve the config, start a supervisor, wire the process signals to it.
import os from 'node:os'
import path from 'node:path'
import type { Config, UserConfig } from './config/schema.js'
import { controlDir } from './common/cluster-paths.js'
import { createLogger } from './common/log.js'
import { LogSink } from './logs/sink.js'
import { captureOutput, stdioFor, type WorkerOutputMode } from './logs/capture.js'
import type { WorkerOutputs } from './supervisor/supervisor.js'
import { Supervisor } from './supervisor/supervisor.js'
import { ClusterError, StartError } from './common/errors.js'
import { openControlSocket, type Controlled, type ControlServer } from './control/server.js'
import type { MetricsServer } from './metrics/server.js'
import { clusterHandle, type ClusterHandle } from './handle.js'
import type { AnyEvent } from './supervisor/events.js'
import type { UpgradeOutcome } from './common/lifecycle.js'
import { closeListenSockets, closeUnusedInherited, inheritFromSystemd, recordListenSockets } from './upgrade/sockets.js'
import { hostPort } from './common/address.js'
import { joinUpgrade, type Successor } from './upgrade/successor.js'
import { checkNode, handOver } from './upgrade/handover.js'
import { notificationFor, systemdNotifier, type Notifier } from './upgrade/notify.js'

/**
 * Starts the cluster. Resolves once every worker is ready; rejects with a
 * ConfigError for an invalid config, a ClusterError when the cluster stops before
 * (an app that fails at boot). Never calls process.exit.
 *
 * `config` ranks like a config file: the environment (CLUSTER_RUN_WORKERS, …) overrides it.
 */
export function run (config: UserConfig): Promise<ClusterHandle> {
  // Loaded here, not by the CLI, which reads its config in a child process (config/once.ts).
  return startCluster(async () => (await import('./config/index.js')).loadConfig({ cwd: process.cwd(), env: process.env, file: false, values: { ...config } }))
}

/** The start shared by run() and the CLI: `resolve` is called again for every reload. */
export async function startCluster (resolveConfig: () => Promise<Config>): Promise<ClusterHandle> {
  // Signals are ours from the first moment: a SIGHUP while the config loads must not
  // kill the primary (Node's default), and a SIGTERM then must stop it cleanly.
  let supervisor: Supervisor | undefined
  let stopRequested: NodeJS.Signals | undefined
  let reopenLogs = (): void => {}
  let upgrade = async (_options: { node?: string }): Promise<UpgradeOutcome> => ({ outcome: 'refused', reason: 'the cluster is starting', durationMs: 0 })
  // A signal is the supervisor's once it is started: one that lands between its
  // construction and its start (the config read answered in the same turn of the event
  // loop, say) is remembered as an early one, not lost in a supervisor yet to start.
  let started = false
  const detach = attachSignals(() => started ? supervisor : undefined, (signal) => { stopRequested ??= signal }, () => reopenLogs(), () => { void upgrade({}) })
  // Every TCP socket the primary binds is recorded, for an upgrade to hand over; an
  // upgrade's new primary receives the old one's before any listen.
  recordListenSockets()
  const activated = inheritFromSystemd()
  // the ports of inherited sockets bound without SO_REUSEPORT: systemd's, and an upgrade's from another policy
  let plainPorts = activated.sockets.map((s) => s.port)
  const resolve = async (): Promise<Config> => sharedWhenInherited(await resolveConfig(), plainPorts)
  const joining = joinUpgrade()
  joining.catch(() => {}) // awaited below
  let successor: Successor | undefined
  let control: ControlServer | undefined
  let metrics: MetricsServer | undefined
  let sink: LogSink | undefined
  let notifier: Notifier | undefined
  const closeAll = async (code: number): Promise<void> => {
    notifier?.close()
    await Promise.all([control?.close(code), metrics?.close()])
    // last: what the shutdown logged is written out before the primary exits
    await sink?.close()
  }
  let handle: ClusterHandle
  try {
    successor = await joining.catch((err: Error) => { throw new StartError(`the upgrade could not start: ${err.message}`, 1) })
    plainPorts = [...plainPorts, ...successor?.sockets.filter((s) => !s.reusePort).map((s) => s.port) ?? []]
    const config = await resolve()
    // Before any fork: a log file that cannot be opened fails the start (exit 73).
    sink = logSink(config)
    const outputs = workerOutputs(sink, config.log.workerOutput)
    let publish: (event: AnyEvent) => void = () => {}
    let shutdownStarted = (): void => {}
    const stopping = new Promise<void>((resolve) => { shutdownStarted = resolve })
    supervisor = new Supervisor({
      config,
      log: createLogger(config.log.level, sink),
      outputs,
      reloadConfig: resolve,
      onStopped: closeAll,
      totals: successor?.totals,
      onEvent: (e) => {
        const message = notifier && notificationFor(e, () => statusLine(running.status()), monotonicUsec)
        if (message) notifier!.send(message)
        if (e.event === 'shutdown.start') {
          shutdownStarted()
          // systemd holds the sockets: connections wait in their queues for the next start, not for workers that drain
          if (activated.sockets.length) closeListenSockets()
        }
        publish(e)
      },
    })
    handle = clusterHandle(supervisor, (p) => { publish = p })
    const events = handle
    const files = [config.log.file, config.log.errorFile].filter((f): f is string => f !== undefined)
    const logs = sink
    const running = supervisor
    reopenLogs = () => {
      if (!files.length) return
      try {
        logs.reopen()
      } catch (err) {
        running.report({ event: 'log.reopen-failed', error: (err as Error).message })
        throw err
      }
      running.report({ event: 'log.reopened', files })
    }
    const logsSource = {
      history: sink.history,
      reopen: () => reopenLogs(),
      get missed () { return logs.missed },
      set missed (n) { logs.missed = n },
    }
    notifier = systemdNotifier(process.env, (error) => running.report({ event: 'systemd.notify-failed', error }), successor?.from)
    for (const socket of activated.sockets) supervisor.report({ event: 'socket.inherited', address: hostPort(socket.address, socket.port), from: 'systemd', ...(socket.name ? { name: socket.name } : {}) })
    for (const skipped of activated.skipped) supervisor.report({ event: 'socket.skipped', ...skipped })
    for (const socket of successor?.sockets ?? []) supervisor.report({ event: 'socket.inherited', address: hostPort(socket.address, socket.port), from: 'upgrade' })
    upgrade = upgrader(running, () => control, stopping, config.readyTimeoutMs)
    const controlled: Controlled = {
      status: () => running.status(),
      reload: () => running.reload(),
      scale: (workers) => running.scale(workers),
      scaleBy: (delta) => running.scaleBy(delta),
      stop: (signal) => running.stop(signal),
      upgrade: (options) => upgrade(options),
      get desiredWorkers () { return running.desiredWorkers },
    }
    // Before any fork: a second cluster of the same name must fail with nothing started.
    // (An upgrade's new primary binds beside the old one's socket, and takes the path over once it serves.)
    if (config.controlSocket) {
      const own = path.dirname(config.controlSocket) === controlDir(process.env, os.homedir())
      control = await openControlSocket(config.controlSocket, controlled, own, logsSource, successor !== undefined)
    }
    if (config.metrics) {
      // prom-client is loaded only when metrics are on: the primary's memory is a target.
      const { openMetricsServer } = await import('./metrics/server.js')
      const { dashboard, actions, ...listener } = config.metrics
      metrics = await openMetricsServer({
        ...listener,
        minReadyWorkers: config.minReadyWorkers,
        dashboard: dashboard
          ? {
              status: () => running.status(),
              history: logs.history,
              // the handle's 'event' has every event of the cluster
              events: (listener) => {
                events.on('event', listener)
                return () => { events.off('event', listener) }
              },
              reload: () => running.reload(),
              scaleBy: (delta) => running.scaleBy(delta),
              recycle: (workerId) => running.recycle(workerId),
              tokenFile: config.controlSocket ? path.join(path.dirname(config.controlSocket), `${config.name}.token`) : null,
              actions,
            }
          : null,
      }, supervisor)
    }
  } catch (err) {
    detach()
    await closeAll(1)
    await successor?.failed((err as Error).message, (err as { exitCode?: number }).exitCode ?? 1)
    throw err
  }
  void supervisor.exited.then(detach)
  // A signal sent while the config loaded may wait in libuv's signal pipe behind the
  // reader's answer: everything since that answer ran without a poll of the loop. One
  // poll now (an immediate queued from an immediate has a poll before it) reads it.
  await new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)))
  if (stopRequested) {
    const code = await supervisor.stop(stopRequested)
    await successor?.failed(`stopped by ${stopRequested}`, code)
    throw new ClusterError(`stopped by ${stopRequested} before the cluster started`, code)
  }
  started = true
  try {
    await supervisor.start({ metrics: metrics?.url ?? null, ...(metrics?.dashboard ? { dashboard: metrics.dashboard } : {}), ...(successor ? { upgradedFrom: successor.from } : {}) })
  } catch (err) {
    await successor?.failed((err as Error).message, (err as { exitCode?: number }).exitCode ?? 1)
    throw err
  }
  const ready = { READY: '1', STATUS: statusLine(supervisor.status()) }
  if (successor) {
    // Every worker is ready: the old primary stops accepting, then this one takes its name,
    // and the service's main pid: told to systemd before the old primary may exit.
    await successor.ready()
    control?.takeOver()
    notifier?.send({ MAINPID: String(process.pid), ...ready })
    await notifier?.flushed()
    successor.committed()
  } else {
    notifier?.send(ready)
  }
  for (const socket of closeUnusedInherited()) supervisor.report({ event: 'socket.unused', address: hostPort(socket.address, socket.port), from: socket.from })
  return handle
}

/**
 * The primary's upgrade (cluster-run upgrade, SIGUSR2): one at a time, only while the
 * cluster runs and no reload does; on success this primary drains and exits 0.
 */
function upgrader (supervisor: Supervisor, control: () => ControlServer | undefined, stopping: Promise<void>, readyTimeoutMs: number): (options: { node?: string }) => Promise<UpgradeOutcome> {
  let running = false
  return async ({ node }) => {
    const refuse = (reason: string): UpgradeOutcome => {
      supervisor.report({ event: 'upgrade.refused', reason })
      return { outcome: 'refused', reason, durationMs: 0 }
    }
    if (running) return refuse('an upgrade is running already')
    const { state, reloading } = supervisor.status()
    if (state !== 'running') return refuse(`the cluster is ${state}`)
    if (reloading) return refuse('a reload is running; upgrade once it has ended')
    running = true
    const binary = node ?? process.execPath
    const checked = await checkNode(binary)
    if ('error' in checked) {
      running = false
      return refuse(checked.error)
    }
    const result = await handOver({
      node: binary,
      version: checked.version,
      // its config read, then its workers' start (each within readyTimeoutMs)
      deadlineMs: readyTimeoutMs + UPGRADE_START_MARGIN_MS,
      started: (pid) => supervisor.report({ event: 'upgrade.start', pid, node: binary, version: checked.version }),
      stopping,
      totals: () => supervisor.totals,
    })
    if (result.outcome !== 'complete') {
      running = false
      supervisor.report({ event: 'upgrade.aborted', reason: result.reason, durationMs: result.durationMs })
      return result
    }
    supervisor.report({ event: 'upgrade.complete', pid: result.pid, node: result.node, durationMs: result.durationMs })
    control()?.handOver()
    void supervisor.stop('upgrade')
    return result
  }
}

/** The STATUS= line systemd shows for the service. */
function statusLine ({ workers }: { workers: { ready: number, desired: number } }): string {
  return `${workers.ready}/${workers.desired} workers ready`
}

/** CLOCK_MONOTONIC in µs (MONOTONIC_USEC=): libuv's hrtime is that clock. */
const monotonicUsec = (): bigint => process.hrtime.bigint() / 1000n

/** What an upgrade's new primary may take beyond readyTimeoutMs: its start and config read. */
const UPGRADE_START_MARGIN_MS = 30_000

/**
 * SIGINT/SIGTERM drain and stop (a second one kills), SIGHUP reloads, SIGTTIN and
 * SIGTTOU add and remove a worker, SIGUSR2 upgrades the primary: the signals of gunicorn's arbiter. Before the
 * supervisor exists, a stop is remembered and the others are ignored.
 */
function attachSignals (current: () => Supervisor | undefined, early: (signal: NodeJS.Signals) => void, reopenLogs: () => void, upgrade: () => void): () => void {
  const on = (signal: NodeJS.Signals, act: (s: Supervisor) => void) => (): void => {
    const supervisor = current()
    if (supervisor) act(supervisor)
    else if (signal === 'SIGINT' || signal === 'SIGTERM') early(signal)
  }
  const handlers: Partial<Record<NodeJS.Signals, () => void>> = {
    SIGINT: on('SIGINT', (s) => { void s.stop('SIGINT') }),
    SIGTERM: on('SIGTERM', (s) => { void s.stop('SIGTERM') }),
    SIGHUP: on('SIGHUP', (s) => { void s.reload() }),
    SIGTTIN: on('SIGTTIN', (s) => s.scaleBy(1)),
    SIGTTOU: on('SIGTTOU', (s) => s.scaleBy(-1)),
    // the log files, for a logrotate that moved them (as nginx and gunicorn do); a listener
    // here also keeps Node from starting its inspector on SIGUSR1
    SIGUSR1: () => { try { reopenLogs() } catch {} },
    // a new primary (Node, cluster-run) takes over, as gunicorn's, nginx's and Puma's USR2
    SIGUSR2: on('SIGUSR2', () => upgrade()),
  }
  for (const [signal, handler] of Object.entries(handlers)) process.on(signal, handler)
  return () => {
    for (const [signal, handler] of Object.entries(handlers)) process.off(signal, handler)
  }
}

/** Where the primary's log goes, as the config says. */
function logSink ({ log }: Config): LogSink {
  const file = (path: string): { path: string, size?: number, interval?: string, keep: number } => ({ path, size: log.rotate.size, interval: log.rotate.interval, keep: log.rotate.keep })
  const terminal = process.stdout.isTTY === true
  return new LogSink({
    // a person reads a terminal; a file is read by tools
    pretty: log.pretty ?? (terminal && log.stdout && log.file === undefined),
    colour: terminal,
    history: log.history,
    output: { stdout: log.stdout, file: log.file ? file(log.file) : undefined, errorFile: log.errorFile ? file(log.errorFile) : undefined },
  })
}

function workerOutputs (sink: LogSink, mode: WorkerOutputMode): WorkerOutputs {
  return {
    stdio: stdioFor(mode),
    attach: (worker, source) => captureOutput(worker.process, source, sink, mode),
    countsOf: (pid) => sink.countsOf(pid),
    log: () => ({ missedByFollowers: sink.missed }),
  }
}

/**
 * 'reuseport' binds a socket per worker with SO_REUSEPORT, which no socket can do beside
 * one bound without it. Socket activation passes one such socket per address, and an
 * upgrade from another policy hands over the old primary's: the workers share those
 * instead, as under 'none' (the kernel spreads the connections; the primary is not in
 * their way). The metrics port is the primary's own.
 */
function sharedWhenInherited (config: Config, plainPorts: number[]): Config {
  const ports = plainPorts.filter((port) => port !== config.metrics?.port)
  if (!ports.length || config.schedulingPolicy !== 'reuseport') return config
  const warning = {
    key: 'schedulingPolicy',
    message: `the inherited socket${ports.length > 1 ? 's' : ''} of port ${ports.join(', ')} ${ports.length > 1 ? 'were' : 'was'} bound without SO_REUSEPORT (systemd's socket activation, or a primary under another policy), beside which "reuseport" cannot bind a socket per worker: the workers share ${ports.length > 1 ? 'them' : 'it'}, as under "none", until a restart`,
    asked: 'reuseport',
    runs: 'none',
  }
  return Object.freeze({ ...config, schedulingPolicy: 'none', warnings: [...config.warnings ?? [], warning] })
}
