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
import { ClusterError } from './common/errors.js'
import { openControlSocket, type ControlServer } from './control/server.js'
import type { MetricsServer } from './metrics/server.js'
import { clusterHandle, type ClusterHandle } from './handle.js'
import type { AnyEvent } from './supervisor/events.js'

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
export async function startCluster (resolve: () => Promise<Config>): Promise<ClusterHandle> {
  // Signals are ours from the first moment: a SIGHUP while the config loads must not
  // kill the primary (Node's default), and a SIGTERM then must stop it cleanly.
  let supervisor: Supervisor | undefined
  let stopRequested: NodeJS.Signals | undefined
  let reopenLogs = (): void => {}
  const detach = attachSignals(() => supervisor, (signal) => { stopRequested ??= signal }, () => reopenLogs())
  let control: ControlServer | undefined
  let metrics: MetricsServer | undefined
  let sink: LogSink | undefined
  const closeAll = async (code: number): Promise<void> => {
    await Promise.all([control?.close(code), metrics?.close()])
    // last: what the shutdown logged is written out before the primary exits
    await sink?.close()
  }
  let handle: ClusterHandle
  try {
    const config = await resolve()
    // Before any fork: a log file that cannot be opened fails the start (exit 73).
    sink = logSink(config)
    const outputs = workerOutputs(sink, config.log.workerOutput)
    let publish: (event: AnyEvent) => void = () => {}
    supervisor = new Supervisor({ config, log: createLogger(config.log.level, sink), outputs, reloadConfig: resolve, onStopped: closeAll, onEvent: (e) => publish(e) })
    handle = clusterHandle(supervisor, (p) => { publish = p })
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
    // Before any fork: a second cluster of the same name must fail with nothing started.
    if (config.controlSocket) {
      const own = path.dirname(config.controlSocket) === controlDir(process.env, os.homedir())
      control = await openControlSocket(config.controlSocket, supervisor, own, logsSource)
    }
    if (config.metrics) {
      // prom-client is loaded only when metrics are on: the primary's memory is a target.
      const { openMetricsServer } = await import('./metrics/server.js')
      metrics = await openMetricsServer({ ...config.metrics, minReadyWorkers: config.minReadyWorkers }, supervisor)
    }
  } catch (err) {
    detach()
    await closeAll(1)
    throw err
  }
  void supervisor.exited.then(detach)
  if (stopRequested) {
    const code = await supervisor.stop(stopRequested)
    throw new ClusterError(`stopped by ${stopRequested} before the cluster started`, code)
  }
  await supervisor.start({ metrics: metrics?.url ?? null })
  return handle
}

/**
 * SIGINT/SIGTERM drain and stop (a second one kills), SIGHUP reloads, SIGTTIN and
 * SIGTTOU add and remove a worker: the signals of gunicorn's arbiter. Before the
 * supervisor exists, a stop is remembered and the others are ignored.
 */
function attachSignals (current: () => Supervisor | undefined, early: (signal: NodeJS.Signals) => void, reopenLogs: () => void): () => void {
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
